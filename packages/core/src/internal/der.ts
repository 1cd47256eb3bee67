/**
 * The little DER (ITU-T X.690) that the trust store and the TLS policy need:
 * walking tag-length-value elements of certificates and PKCS#12 files,
 * reading object identifiers, and writing the few element types a PKCS#12
 * trust store is made of.
 *
 * It is not a general ASN.1 library: no schemas, no BER indefinite lengths
 * (PKCS#12 files made by keytool and openssl use definite lengths), no
 * high-tag-number forms. Bad input throws a `DerError` saying where.
 */

export class DerError extends Error {
  override readonly name = "DerError"
}

/** One element: its tag byte and where its content lies in `bytes`. */
export interface Element {
  readonly tag: number
  readonly bytes: Uint8Array
  /** Offset of the tag byte. */
  readonly start: number
  /** Offset of the first content byte. */
  readonly contentStart: number
  /** Offset just past the content. */
  readonly end: number
}

export const Tag = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
  /** `[0]` constructed, context-specific. */
  context0: 0xa0,
} as const

/** Reads the element starting at `offset`. */
export const read = (bytes: Uint8Array, offset = 0, limit = bytes.length): Element => {
  if (offset + 2 > limit) throw new DerError(`truncated element at byte ${offset}`)
  const tag = bytes[offset]!
  if ((tag & 0x1f) === 0x1f) throw new DerError(`unsupported high tag number at byte ${offset}`)
  let length = bytes[offset + 1]!
  let contentStart = offset + 2
  if (length & 0x80) {
    const count = length & 0x7f
    if (count === 0) throw new DerError(`indefinite length at byte ${offset}`)
    if (count > 4) throw new DerError(`length too large at byte ${offset}`)
    if (contentStart + count > limit) throw new DerError(`truncated length at byte ${offset}`)
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + bytes[contentStart + i]!
    contentStart += count
  }
  const end = contentStart + length
  if (end > limit) {
    throw new DerError(`element at byte ${offset} needs ${end - limit} more bytes than there are`)
  }
  return { tag, bytes, start: offset, contentStart, end }
}

/** The element's content bytes (a view, not a copy). */
export const content = (element: Element): Uint8Array =>
  element.bytes.subarray(element.contentStart, element.end)

/** The whole element, tag and length included (a view, not a copy). */
export const encoded = (element: Element): Uint8Array =>
  element.bytes.subarray(element.start, element.end)

/** The elements inside a constructed element. */
export const children = (element: Element): Array<Element> => {
  const result: Array<Element> = []
  let offset = element.contentStart
  while (offset < element.end) {
    const child = read(element.bytes, offset, element.end)
    result.push(child)
    offset = child.end
  }
  return result
}

/** Reads an element and checks its tag. */
export const expect = (element: Element | undefined, tag: number, what: string): Element => {
  if (element === undefined) throw new DerError(`${what} is missing`)
  if (element.tag !== tag) {
    throw new DerError(
      `${what}: expected tag 0x${tag.toString(16)}, found 0x${element.tag.toString(16)}`,
    )
  }
  return element
}

/** Decodes an OBJECT IDENTIFIER element to dotted form. */
export const oid = (element: Element): string => {
  const bytes = content(element)
  if (bytes.length === 0) throw new DerError("empty object identifier")
  const first = bytes[0]!
  const parts = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80]
  let value = 0
  for (let i = 1; i < bytes.length; i++) {
    value = value * 128 + (bytes[i]! & 0x7f)
    if ((bytes[i]! & 0x80) === 0) {
      parts.push(value)
      value = 0
    }
  }
  return parts.join(".")
}

/** Decodes a small non-negative INTEGER (iteration counts, versions). */
export const smallInteger = (element: Element): number => {
  const bytes = content(element)
  if (bytes.length === 0 || bytes.length > 6) throw new DerError("integer out of range")
  let value = 0
  for (const byte of bytes) value = value * 256 + byte
  return value
}

// Writing.

const lengthBytes = (length: number): Array<number> => {
  if (length < 0x80) return [length]
  const bytes: Array<number> = []
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256)
  return [0x80 | bytes.length, ...bytes]
}

/** Encodes one element from its tag and content. */
export const element = (tag: number, ...contents: ReadonlyArray<Uint8Array>): Uint8Array => {
  const body = Buffer.concat(contents)
  return Buffer.concat([Buffer.from([tag, ...lengthBytes(body.length)]), body])
}

export const sequence = (...items: ReadonlyArray<Uint8Array>): Uint8Array =>
  element(Tag.sequence, ...items)

/** A SET OF, its members sorted by their encoding as DER requires. */
export const setOf = (...items: ReadonlyArray<Uint8Array>): Uint8Array =>
  element(Tag.set, ...[...items].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))))

export const octetString = (bytes: Uint8Array): Uint8Array => element(Tag.octetString, bytes)

export const explicit0 = (...items: ReadonlyArray<Uint8Array>): Uint8Array =>
  element(Tag.context0, ...items)

export const integer = (value: number): Uint8Array => {
  const bytes: Array<number> = []
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256)
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0)
  return element(Tag.integer, Buffer.from(bytes))
}

export const nullValue = (): Uint8Array => element(Tag.null)

export const objectIdentifier = (dotted: string): Uint8Array => {
  const parts = dotted.split(".").map(Number)
  const bytes: Array<number> = [parts[0]! * 40 + parts[1]!]
  for (const part of parts.slice(2)) {
    const group: Array<number> = [part & 0x7f]
    for (let rest = Math.floor(part / 128); rest > 0; rest = Math.floor(rest / 128)) {
      group.unshift((rest & 0x7f) | 0x80)
    }
    bytes.push(...group)
  }
  return element(Tag.oid, Buffer.from(bytes))
}

/** A BMPString (UTF-16BE), as PKCS#12 friendly names are written. */
export const bmpString = (text: string): Uint8Array => {
  const bytes = Buffer.alloc(text.length * 2)
  for (let i = 0; i < text.length; i++) bytes.writeUInt16BE(text.charCodeAt(i), i * 2)
  return element(Tag.bmpString, bytes)
}

/** Decodes a BMPString element. */
export const readBmpString = (element: Element): string => {
  const bytes = content(element)
  let text = ""
  for (let i = 0; i + 1 < bytes.length; i += 2)
    text += String.fromCharCode(bytes[i]! * 256 + bytes[i + 1]!)
  return text
}
