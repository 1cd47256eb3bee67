/**
 * The spoc.conf reader: turns the bytes of a spoc.conf file into entries and
 * warnings, keeping every byte of every value. It is a pure function of the
 * bytes; reading the file and reporting failures is `SpocConfSource.ts`.
 *
 * The format is the Java-properties style that administrators edit on
 * Windows, read the way the spooler controller means it rather than the way
 * generic INI or properties readers do:
 *
 * - Encodings: UTF-8 with or without BOM; UTF-16LE or UTF-16BE with a BOM.
 *   Bytes that are not valid in the detected encoding are refused, never
 *   replaced. Line ends: CRLF, LF or CR; the last line needs none.
 * - A line whose first non-blank character is `#` or `!` is a comment. `#`
 *   and `;` anywhere else are part of the value.
 * - `key = value`: the first `=` or `:` separates, with any spaces or tabs
 *   around it. Backslashes are literal (no escapes, no line continuation),
 *   quotes are kept (with a warning when they wrap the whole value), and
 *   nothing is converted: `true` stays the string `true`.
 * - Trailing spaces and tabs of a value are trimmed, with a warning.
 * - A repeated key: the last one wins, with a warning naming both lines.
 * - `[section]` lines, a lone `[EMPTY]` line and lines with no separator are
 *   ignored, each with a warning.
 *
 * Values are not validated here: empty inherits and `[EMPTY]` forces empty
 * (core `ConfigSource.entry`), and resolution checks them like every layer.
 */
import { ConfigSource, Origin } from "@spoc-mail/core"

/** The name of the layer a spoc.conf file makes. */
export const layerName = "spoc.conf"

/** How the file's bytes were decoded. */
export type Encoding = "UTF-8" | "UTF-8 with BOM" | "UTF-16LE" | "UTF-16BE"

export type Decoded =
  | { readonly ok: true; readonly text: string; readonly encoding: Encoding }
  | { readonly ok: false; readonly problem: string; readonly fix: string }

const saveAsUtf8 = "open it in an editor and save it as UTF-8 (with or without BOM)"

const strictDecode = (label: "utf-8" | "utf-16le", bytes: Uint8Array): string | undefined => {
  try {
    return new TextDecoder(label, { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch {
    return undefined
  }
}

/** UTF-16BE bytes as UTF-16LE: swap each pair. An odd last byte stays and fails decoding. */
const swapPairs = (bytes: Uint8Array): Uint8Array => {
  const swapped = Uint8Array.from(bytes)
  for (let i = 0; i + 1 < swapped.length; i += 2) {
    swapped[i] = bytes[i + 1]!
    swapped[i + 1] = bytes[i]!
  }
  return swapped
}

/**
 * Decodes the bytes of a spoc.conf file by its byte-order mark: UTF-16LE,
 * UTF-16BE or UTF-8 with a BOM, else UTF-8. Invalid bytes and NUL characters
 * (UTF-16 saved without a BOM) are refused with the fix.
 */
export const decode = (bytes: Uint8Array): Decoded => {
  let encoding: Encoding = "UTF-8"
  let text: string | undefined
  if (bytes[0] === 0xff && bytes[1] === 0xfe) {
    encoding = "UTF-16LE"
    text = strictDecode("utf-16le", bytes.subarray(2))
  } else if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    encoding = "UTF-16BE"
    text = strictDecode("utf-16le", swapPairs(bytes.subarray(2)))
  } else if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    encoding = "UTF-8 with BOM"
    text = strictDecode("utf-8", bytes.subarray(3))
  } else {
    text = strictDecode("utf-8", bytes)
  }

  if (text === undefined) {
    return {
      ok: false,
      problem:
        encoding === "UTF-8"
          ? "is not valid UTF-8 (it may be saved as ANSI / Windows-1252)"
          : `starts with a ${encoding} byte-order mark but is not valid ${encoding}`,
      fix: saveAsUtf8,
    }
  }
  if (text.includes("\0")) {
    return {
      ok: false,
      problem: "contains NUL characters (it may be UTF-16 saved without a byte-order mark)",
      fix: saveAsUtf8,
    }
  }
  return { ok: true, text, encoding }
}

/** What the reader found in one file: entries (last of each key) and warnings. */
export interface Reading {
  readonly entries: ReadonlyArray<ConfigSource.SourceEntry>
  readonly warnings: ReadonlyArray<ConfigSource.ConfigWarning>
}

const blank = /^[ \t\f]*$/
const leadingBlanks = /^[ \t\f]+/
const trailingBlanks = /[ \t\f]+$/
const section = /^\[[^\]]*\]$/

/** A value wholly wrapped in one kind of quotes: `"svc print"` or `'x'`. */
const isQuoted = (value: string): boolean =>
  value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])

/**
 * Reads decoded spoc.conf text. `path` only names the file in origins; the
 * text is not touched beyond splitting lines and the key/value separator.
 */
export const read = (text: string, path: string): Reading => {
  const warnings: Array<ConfigSource.ConfigWarning> = []
  const lastByKey = new Map<string, { line: number; entry: ConfigSource.SourceEntry }>()
  const lines = text.split(/\r\n|\r|\n/)

  lines.forEach((raw, index) => {
    const line = index + 1
    const origin = Origin.file(path, line)
    const content = raw.replace(leadingBlanks, "")
    if (blank.test(content) || content.startsWith("#") || content.startsWith("!")) return

    // Lines that are not settings: a lone [EMPTY], a [section], text with no separator.
    const trimmed = content.replace(trailingBlanks, "")
    if (ConfigSource.isForceEmpty(trimmed)) {
      warnings.push({
        origin,
        message: "a lone [EMPTY] line is not a setting and is ignored",
        fix: "write [EMPTY] as the value of a key, such as mailuser = [EMPTY]",
      })
      return
    }
    if (section.test(trimmed)) {
      warnings.push({
        origin,
        // Not echoed: a stray line can be a password pasted on its own.
        message: "a [section] line is ignored: spoc.conf has no sections",
        fix: "remove the line; every key applies to the whole file",
      })
      return
    }
    const separator = content.search(/[=:]/)
    const key = separator < 0 ? "" : content.slice(0, separator).replace(trailingBlanks, "")
    if (key === "") {
      warnings.push({
        origin,
        message:
          separator < 0
            ? "the line has no = or : and is ignored"
            : "the line has no key before its separator and is ignored",
        fix: "write one setting per line as key = value, or start a comment with #",
      })
      return
    }

    // The value: every byte after the separator and the blanks around it.
    const spaced = content.slice(separator + 1).replace(leadingBlanks, "")
    const value = spaced.replace(trailingBlanks, "")
    if (value !== spaced) {
      warnings.push({
        key,
        origin,
        message: `trailing spaces after the value of ${key} were removed`,
        fix: "delete the spaces at the end of the line",
      })
    }
    if (isQuoted(value)) {
      warnings.push({
        key,
        origin,
        message: `the value of ${key} is wrapped in quotes, which are kept as part of it`,
        fix: "remove the quotes unless they belong to the value: spoc.conf values are not quoted",
      })
    }

    const previous = lastByKey.get(key)
    if (previous !== undefined) {
      warnings.push({
        key,
        origin,
        message:
          `${key} is set on line ${previous.line} and again on line ${line}; ` +
          `line ${line} wins`,
        fix: `delete one of the two lines (${previous.line} or ${line})`,
      })
      lastByKey.delete(key)
    }
    lastByKey.set(key, { line, entry: ConfigSource.entry(key, value, origin) })
  })

  const entries = [...lastByKey.values()]
    .sort((a, b) => a.line - b.line)
    .map((found) => found.entry)
  return { entries, warnings }
}
