/**
 * The token with the first character of its signature changed. Every bit of that base64url digit is a
 * signature bit (the last digit's low bits are padding a decoder may ignore, so changing it can leave the
 * signature as it was).
 */
export function flipSignature(token: string): string {
  const at = token.lastIndexOf('.') + 1;
  return `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`;
}
