// What a registry image reference is, written once. Every check of an image URI is made from the
// sources below: the container presets' schema (a JS RegExp, and the JSON Schema made from it),
// form.js (the pattern as data, `^…$`) and submit.yml.erb (the pattern as data, `\A…\z`, in Ruby:
// the check that really protects). The job's bash library keeps its own copy of the digest rule
// (valid_digest in app-template/template/jupyter-session.sh); test/image-rules.test.ts keeps the two equal.
//
// The sources use only syntax JavaScript (with or without the `u` flag, as JSON Schema validators
// compile patterns) and Ruby (Onigmo) read the same way: character classes of ASCII letters, digits
// and `._-` (the `-` last), `(?:…)`, `?`, `*`, `{m,n}`. No `\d`, `\w`, `\s`, no lookaround, no `/`
// escapes, no anchors inside: `^`/`$` mean different things in the two engines, so the anchors are
// added per engine below, around the whole alternation.

/** A digest as the job uses it to name a cached image: sha256 and exactly 64 lower-case hex digits. */
export const digestSource = 'sha256:[0-9a-f]{64}';

/** A registry host: letters, digits, `.` and `-`, starting and ending with a letter or digit; an optional :PORT. */
const hostSource = '[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?';
/** One path component: never empty, never `.` or `..` (it starts with a letter or digit). */
const componentSource = '[A-Za-z0-9][A-Za-z0-9._-]*';
/** A tag: at most 128 characters, as Docker's reference grammar allows. */
const tagSource = '[A-Za-z0-9_][A-Za-z0-9._-]{0,127}';

/**
 * A registry image URI, without anchors: `docker://` or `oras://`, then an optional `HOST[:PORT]/`
 * (only when another path component follows: in `docker://ubuntu:22.04`, `ubuntu` is the repository
 * and `22.04` the tag), one or more `/`-separated path components, an optional `:TAG`, an optional
 * `@sha256:<64 hex>`. `@` appears only in that digest.
 */
export const registryImageSource =
  `(?:docker|oras)://(?:${hostSource}/)?${componentSource}(?:/${componentSource})*(?::${tagSource})?(?:@${digestSource})?`;

/** A source anchored for JavaScript: `^` and `$` (no `m` flag) are the start and end of the whole text. */
export const jsAnchored = (source: string): string => `^(?:${source})$`;

/** A source anchored for Ruby: `^`/`$` are line anchors there, `\A`/`\z` the start and end of the whole text. */
export const rubyAnchored = (source: string): string => `\\A(?:${source})\\z`;

/** The digest rule, `^sha256:[0-9a-f]{64}$`: the same text as valid_digest's in the job's bash library. */
export const digestPattern = new RegExp(`^${digestSource}$`);

/** A whole text that is a registry image URI (JavaScript). */
export const registryImagePattern = new RegExp(jsAnchored(registryImageSource));

/** The same rule for form.js: the source of a JavaScript RegExp. */
export const registryImageJs = jsAnchored(registryImageSource);

/** The same rule for submit.yml.erb: the source of a Ruby Regexp (Regexp.new). */
export const registryImageRuby = rubyAnchored(registryImageSource);

/** Whether TEXT, as a whole, is a registry image URI. */
export const isRegistryImage = (text: string): boolean => registryImagePattern.test(text);
