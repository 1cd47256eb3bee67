/**
 * PEM trust stores as they arrive from administrators: UTF-8 with or without
 * a BOM, UTF-16 with a BOM (Windows editors), CRLF or LF, bundles of many
 * certificates, and any text between the blocks (openssl's "subject=" lines,
 * keytool's "Alias name:" lines, comments).
 *
 * An entry's alias comes from the nearest line before its block that names
 * one: our own `# alias: NAME` (what `trust import` writes), openssl's
 * `friendlyName: NAME`, or keytool's `Alias name: NAME`. A block without one
 * is named after its subject's common name. Editing keeps the file's
 * encoding, BOM, line endings and every other byte of text.
 *
 * `TRUSTED CERTIFICATE` blocks (OpenSSL's form with trust settings appended)
 * are read as the certificate they start with; other blocks (keys, CRLs) are
 * ignored.
 */
import { X509Certificate } from "node:crypto"
import * as Der from "./der.ts"
import { StoreProblem } from "./storeProblem.ts"

export type TextEncoding = "utf8" | "utf8-bom" | "utf16le" | "utf16be"

export interface PemBlock {
  /** The alias named in the text before the block, if any. */
  readonly alias: string | undefined
  readonly der: Uint8Array
  /** Where the block starts (at its alias line, when it has one) and ends in the text. */
  readonly start: number
  readonly end: number
}

export interface PemText {
  readonly text: string
  readonly encoding: TextEncoding
  readonly lineEnding: "\r\n" | "\n"
  readonly blocks: ReadonlyArray<PemBlock>
}

/** Decodes the bytes, honouring a BOM. */
export const decodeText = (bytes: Uint8Array): { text: string; encoding: TextEncoding } => {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf) {
    return { text: buffer.subarray(3).toString("utf8"), encoding: "utf8-bom" }
  }
  if (buffer[0] === 0xff && buffer[1] === 0xfe) {
    return { text: buffer.subarray(2).toString("utf16le"), encoding: "utf16le" }
  }
  if (buffer[0] === 0xfe && buffer[1] === 0xff) {
    const swapped = Buffer.from(buffer.subarray(2))
    swapped.swap16()
    return { text: swapped.toString("utf16le"), encoding: "utf16be" }
  }
  return { text: buffer.toString("utf8"), encoding: "utf8" }
}

/** Encodes text back in the encoding it was read in. */
export const encodeText = (text: string, encoding: TextEncoding): Buffer => {
  switch (encoding) {
    case "utf8":
      return Buffer.from(text, "utf8")
    case "utf8-bom":
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, "utf8")])
    case "utf16le":
      return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")])
    case "utf16be": {
      const body = Buffer.from(text, "utf16le")
      body.swap16()
      return Buffer.concat([Buffer.from([0xfe, 0xff]), body])
    }
  }
}

/** Whether decoded text holds at least one PEM certificate header. */
export const looksLikePem = (text: string): boolean =>
  /-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----/.test(text)

const blockPattern =
  /-----BEGIN ((?:TRUSTED |X509 )?CERTIFICATE)-----([\s\S]*?)-----END \1-----[ \t]*(?:\r?\n)?/g
/**
 * `# alias: x` (ours), `friendlyName: x` (openssl, after "Bag Attributes"),
 * `Alias name: x` (keytool -list -rfc).
 */
const aliasPattern = new RegExp(
  String.raw`^(?:[ \t]*Bag Attributes[^\n]*\n)?[ \t]*(?:#[ \t]*alias:|friendlyName:|Alias name:)` +
    String.raw`[ \t]*([^\r\n]*?)[ \t]*\r?$`,
  "gim",
)

/** Finds every certificate block, with its alias and position. */
export const parsePem = (bytes: Uint8Array): PemText => {
  const { text, encoding } = decodeText(bytes)
  const blocks: Array<PemBlock> = []
  let previousEnd = 0
  for (const match of text.matchAll(blockPattern)) {
    const index = blocks.length + 1
    const base64 = match[2]!.replace(/\s+/g, "")
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length === 0) {
      throw new StoreProblem(
        `holds a damaged PEM block (certificate ${index}: not base64)`,
        "export that certificate again from its source",
      )
    }
    let der: Uint8Array = Buffer.from(base64, "base64")
    if (match[1] === "TRUSTED CERTIFICATE") {
      try {
        der = Der.encoded(Der.read(der, 0))
      } catch (cause) {
        throw new StoreProblem(
          `holds a damaged TRUSTED CERTIFICATE block (certificate ${index})`,
          "export that certificate again from its source",
          { cause },
        )
      }
    }

    const between = text.slice(previousEnd, match.index)
    const aliasLines = [...between.matchAll(aliasPattern)]
    const aliasLine = aliasLines[aliasLines.length - 1]
    const alias = aliasLine?.[1] === undefined || aliasLine[1] === "" ? undefined : aliasLine[1]
    // The alias line and the text after it (subject=, Entry type: ...) belong to the block.
    const start = aliasLine === undefined ? match.index! : previousEnd + aliasLine.index!
    const end = match.index! + match[0].length
    blocks.push({ alias, der, start, end })
    previousEnd = end
  }
  if (blocks.length === 0 && /-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----/.test(text)) {
    throw new StoreProblem(
      "holds a PEM certificate without its END line (truncated?)",
      "copy the file again from its source",
    )
  }
  const lineEnding = /\r\n/.test(text) ? "\r\n" : "\n"
  return { text, encoding, lineEnding, blocks }
}

/** The PEM text of one DER certificate. */
export const toPem = (der: Uint8Array, lineEnding = "\n"): string => {
  const base64 = Buffer.from(der).toString("base64")
  const lines = base64.match(/.{1,64}/g) ?? []
  return ["-----BEGIN CERTIFICATE-----", ...lines, "-----END CERTIFICATE-----", ""].join(lineEnding)
}

/** The file with one more certificate at the end, under a `# alias:` line. */
export const appendCertificate = (pem: PemText, alias: string, der: Uint8Array): Buffer => {
  const { text, lineEnding } = pem
  const separator = text.length === 0 || text.endsWith("\n") ? "" : lineEnding
  const subject = new X509Certificate(der).subject.split("\n").join(", ")
  const added =
    `# alias: ${alias}${lineEnding}# subject: ${subject}${lineEnding}` + toPem(der, lineEnding)
  return encodeText(`${text}${separator}${added}`, pem.encoding)
}

/** The file without the given blocks; the rest of the text is kept as it was. */
export const removeBlocks = (pem: PemText, remove: ReadonlyArray<PemBlock>): Buffer => {
  let text = pem.text
  for (const block of [...remove].sort((a, b) => b.start - a.start)) {
    text = text.slice(0, block.start) + text.slice(block.end)
  }
  return encodeText(text, pem.encoding)
}
