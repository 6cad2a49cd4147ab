// Hostile form values: what a researcher, or a crafted POST to the dashboard, can put in a field. Used by
// test/hostile.test.ts (every field, real Ruby and bash) and test/e2e/hostile-jobs.test.ts (a sample in
// real jobs). `touch` is the command a value would run if it ever reached a shell unquoted; `canary`
// the file it would make.
export function hostileValues(touch: string, canary: string) {
  /** Text a researcher (or a crafted POST) can put in any field. */
  const texts: Array<[category: string, value: string]> = [
    ['command substitution', `$(${touch})`], ['backticks', `\`${touch}\``], ['; command', `x; ${touch}`], ['pipe', `x | ${touch}`],
    ['&&', `x && ${touch}`], ['||', `false || ${touch}`], ['redirection', `x > ${canary}`], ['background &', `x & ${touch} &`],
    ['single quotes', `'; ${touch}; '`], ['double quotes', `"; ${touch}; "`], ['mixed quotes', `a'b"c'd"e`], ['backslashes', 'back\\slash\\'],
    ['trailing backslash', 'x\\'], ['variable', '$HOME ${PATH} $0 $$'], ['arithmetic', '$((6*7))'], ['process substitution', `<(${touch})`],
    ['brace expansion', '{a,b}'], ['glob', '* ? [a-z]'], ['tilde', '~root'], ['history', '!!'],
    ['newline + command', `x\n${touch}`], ['carriage return', 'x\r\ny'], ['tab', 'a\tb'], ['NUL', 'x\u0000y'], ['escape sequence', 'x\u001b[31my'],
    ['YAML flow', '{a: 1, b: [2, 3]}'], ['YAML anchor', '&a x'], ['YAML alias', '*a'], ['YAML tag', '!!python/object:os.system'],
    ['YAML document marker', '---\nx: 1'], ['YAML comment', 'x # y'], ['YAML key', 'key: value'], ['YAML null', 'null'], ['YAML bool', 'yes'],
    ['ERB', `<%= \`${touch}\` %>`], ['ERB comment', '<%# x %>'], ['EJS-looking', '[%= x %]'], ['Ruby interpolation', '#{`touch /tmp/x`}'],
    ['format string', '%{value} %s %n'], ['JSON', '{"a": "b"}'], ['HTML', '<script>alert(1)</script>'],
    ['path traversal', '../../etc/passwd'], ['absolute traversal', '/project/containers/../../etc/shadow'], ['leading dash', '--bind=/'],
    ['leading dashes', '-rf /'], ['option-like', '--help'], ['unicode', 'ünïcødé 漢字 🙂'], ['right-to-left mark', 'abc\u202edef'],
    ['zero-width space', 'a\u200bb'], ['empty', ''], ['space', ' '], ['whitespace only', ' \t '], ['64 kB', 'x'.repeat(65_536)],
  ];

  /** How a number may be written. */
  const numbers: Array<[string, string]> = [
    ['1e3', '1e3'], ['-1', '-1'], ['0x10', '0x10'], ['4.5', '4.5'], [' 4', ' 4'], ['4 ', '4 '], ['+4', '+4'], ['04', '04'],
    ['1,000', '1,000'], ['Devanagari digits', '१२'], ['full-width digits', '４'], ['huge', '9'.repeat(40)], ['zero', '0'],
  ];
  return { texts, numbers };
}
