/**
 * Other spellings of a request target that some router may take for the same route: case, percent-encoded
 * letters and slashes, duplicate / trailing slashes, dot segments, absolute-form, `;` parameters, unicode
 * look-alikes, query and fragment tricks. Used by the conformance suite to prove that a route policy is
 * decided on the route the framework runs, whatever the spelling.
 */
export function pathSpellings(path: string): string[] {
  const segments = path.split('/').filter((segment) => segment !== '');
  const [first = '', ...rest] = segments;
  const tail = rest.length === 0 ? '' : `/${rest.join('/')}`;
  const encodeLetter = (segment: string, index: number, upper = false) => {
    const hex = segment.charCodeAt(index).toString(16);
    return `${segment.slice(0, index)}%${upper ? hex.toUpperCase() : hex}${segment.slice(index + 1)}`;
  };
  const fullyEncoded = [...path].map((char) => (char === '/' ? '/' : `%${char.charCodeAt(0).toString(16)}`));
  const spellings = [
    // case
    path.toUpperCase(),
    `/${first.toUpperCase()}${tail}`,
    `/${first[0]?.toUpperCase() ?? ''}${first.slice(1)}${tail}`,
    `/${first}${tail.toUpperCase()}`,
    // percent-encoding of letters, of everything, of the slashes
    `/${encodeLetter(first, 0)}${tail}`,
    `/${encodeLetter(first, 0, true)}${tail}`,
    `/${encodeLetter(first, first.length - 1)}${tail}`,
    `/${encodeLetter(first.toUpperCase(), 0)}${tail}`,
    fullyEncoded.join(''),
    path.replaceAll('/', '%2F'),
    path.replaceAll('/', '%2f'),
    `/${first}%2F${rest.join('%2F')}`,
    `%2F${first}${tail}`,
    `/${first}%252F${rest.join('/')}`,
    `/%25${encodeLetter(first, 0).slice(1)}${tail}`,
    // slashes
    `/${path}`,
    `//${path}`,
    path.replaceAll('/', '//'),
    `/${first}//${rest.join('/')}`,
    `${path}/`,
    `${path}//`,
    `/${first.toUpperCase()}${tail}/`,
    // dot segments
    `/.${path}`,
    `/${first}/.${tail}`,
    `/x/..${path}`,
    `/${first}/x/..${tail}`,
    `${path}/.`,
    `${path}/x/..`,
    `/%2e${path}`,
    `/x/%2e%2e${path}`,
    `/x/%2E%2E${path}`,
    `/x%2f..${path}`,
    `/x/..%2f${first}${tail}`,
    // backslashes
    path.replaceAll('/', '\\'),
    `/${first}\\${rest.join('\\')}`,
    `/${first}%5c${rest.join('%5c')}`,
    // absolute-form request targets
    `http://127.0.0.1${path}`,
    `http://evil.example${path}`,
    `HTTP://EVIL.EXAMPLE${path}`,
    `https://evil.example${path}`,
    `http://evil.example${path.toUpperCase()}`,
    `http://evil.example/${encodeLetter(first, 0)}${tail}`,
    `http://user:pass@evil.example:8080${path}?q=1`,
    // matrix / semicolon parameters
    `${path};x=1`,
    `${path};`,
    `/${first};x${tail}`,
    `/${first};${tail}`,
    `${path}%3Bx=1`,
    // unicode look-alikes and odd bytes (raw UTF-8 and encoded)
    `/${first.replace('i', 'ı')}${tail}`,
    `/${first.replace('a', 'а')}${tail}`,
    `/${encodeURIComponent(String.fromCharCode(0xff41))}${first.slice(1)}${tail}`,
    `/${first}${tail}%00`,
    `/${first}${tail}%20`,
    `/${first}${tail}%09`,
    `/${first}${tail}%E2%80%8B`,
    // query and fragment tricks
    `${path}?x=1`,
    `${path}?`,
    `${path}#x`,
    `${path}?/../../health`,
    `${path}%3F`,
    `${path}%23x`,
    `${path}?tenant=x#/health`,
    `/health/..${path}`,
    `/health%2F..${path}`,
    `/health?${path}`,
    `/health#${path}`,
  ];
  return [...new Set(spellings)].filter((spelling) => spelling !== path);
}

/** A request target with raw non-ASCII characters sent as UTF-8 bytes (what a hostile client can send). */
export function asLatin1Bytes(target: string): string {
  return Buffer.from(target, 'utf8').toString('latin1');
}
