// Parse a preset file and remember where every field stands, so that any problem found later
// (by the schema or by a cross-reference check) can be reported as FILE:LINE.
import { EVENT_ID, getScalarValue, load, parseEvents, YAMLException, type Event } from 'js-yaml';

export type FieldPath = ReadonlyArray<string | number>;

export interface ParsedYaml {
  value: unknown;
  /** 1-based line of the field at `path`, or of its nearest ancestor that exists. */
  lineOf(path: FieldPath): number;
}

export class YamlSyntaxError extends Error {
  /** notSyntax: YAML the presets refuse though it parses (an alias); the reason is the whole message. */
  constructor(readonly line: number, readonly reason: string, readonly notSyntax = false) {
    super(reason);
  }
}

export function parseYaml(source: string, filename: string): ParsedYaml {
  let value: unknown;
  let events: Event[];
  try {
    // The events first: an alias is refused below before anything is built from it. maxAliases
    // stays as a second guard against a "billion laughs" file.
    events = parseEvents(source, { filename });
    refuseAliases(source, events);
    value = load(source, { filename, maxAliases: 50 });
  } catch (error) {
    if (error instanceof YAMLException) {
      throw new YamlSyntaxError((error.mark?.line ?? 0) + 1, error.reason ?? error.message);
    }
    throw error;
  }
  const lineStarts = lineStartOffsets(source);
  const offsets = fieldOffsets(source, events);
  return {
    value,
    lineOf(path) {
      for (let depth = path.length; depth >= 0; depth--) {
        const offset = offsets.get(pathKey(path.slice(0, depth)));
        if (offset !== undefined) return lineAt(lineStarts, offset);
      }
      return 1;
    },
  };
}

/**
 * An alias makes one value stand for another far away in the file (and, nested, for a great many):
 * a preset is a small file that says what it means where it says it.
 */
function refuseAliases(source: string, events: Event[]): void {
  const alias = events.find((event) => event.type === EVENT_ID.ALIAS);
  if (alias?.type === EVENT_ID.ALIAS) {
    throw new YamlSyntaxError(lineAt(lineStartOffsets(source), alias.anchorStart),
      'uses a YAML alias (*name), which presets do not allow: write the value out where it is used', true);
  }
}

const pathKey = (path: FieldPath) => JSON.stringify(path);

type Frame =
  | { kind: 'mapping'; path: FieldPath; pendingKey: string | null; keyOffset: number }
  | { kind: 'sequence'; path: FieldPath; index: number };

/** Walk the parser's event stream and note the source offset of every mapping key and sequence item. */
function fieldOffsets(source: string, events: Event[]): Map<string, number> {
  const offsets = new Map<string, number>();
  const stack: Frame[] = [];

  // Where the node that starts now sits, and records it; returns its path.
  const placeNode = (nodeOffset: number): FieldPath | null => {
    const parent = stack.at(-1);
    if (!parent) {
      offsets.set(pathKey([]), nodeOffset);
      return [];
    }
    if (parent.kind === 'sequence') {
      const path = [...parent.path, parent.index++];
      offsets.set(pathKey(path), nodeOffset);
      return path;
    }
    if (parent.pendingKey === null) return null; // this node is a key, handled by the caller
    const path = [...parent.path, parent.pendingKey];
    offsets.set(pathKey(path), parent.keyOffset);
    parent.pendingKey = null;
    return path;
  };

  for (const event of events) {
    switch (event.type) {
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        const path = placeNode(event.start) ?? [...(stack.at(-1)?.path ?? []), '<key>'];
        stack.push(event.type === EVENT_ID.MAPPING
          ? { kind: 'mapping', path, pendingKey: null, keyOffset: event.start }
          : { kind: 'sequence', path, index: 0 });
        break;
      }
      case EVENT_ID.SCALAR:
      case EVENT_ID.ALIAS: {
        const offset = event.type === EVENT_ID.SCALAR ? event.valueStart : event.anchorStart;
        const parent = stack.at(-1);
        if (parent?.kind === 'mapping' && parent.pendingKey === null) {
          parent.pendingKey = event.type === EVENT_ID.SCALAR ? getScalarValue(source, event) : '<<alias>>';
          parent.keyOffset = offset;
        } else {
          placeNode(offset);
        }
        break;
      }
      case EVENT_ID.POP:
        stack.pop();
        break;
      default:
        break;
    }
  }
  return offsets;
}

function lineStartOffsets(source: string): number[] {
  const starts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') starts.push(i + 1);
  return starts;
}

function lineAt(lineStarts: number[], offset: number): number {
  let low = 0;
  let high = lineStarts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if ((lineStarts[mid] ?? 0) <= offset) low = mid;
    else high = mid - 1;
  }
  return low + 1;
}
