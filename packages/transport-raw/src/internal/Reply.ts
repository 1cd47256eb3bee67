/**
 * SMTP replies and their parser (RFC 5321 4.2): `NNN-text` lines continue a
 * reply, `NNN text` (or a bare `NNN`) ends it, and every line of one reply
 * carries the same code. The parser takes bytes as they arrive, in chunks of
 * any size, and returns the replies that are complete; it is pure (no
 * sockets, no clock), so the adapter and the tests drive it the same way.
 *
 * Memory is bounded: a line longer than `maxLineOctets` (RFC 5321 4.5.3.1.5
 * allows 512; real servers are looser, so the default is 2048) or a reply
 * larger than `maxReplyOctets` is a protocol violation at once, before the
 * rest arrives. Bare LF is accepted as a line end, as most clients do.
 *
 * Enhanced status codes (RFC 3463, RFC 2034) are read from the first line
 * when their class matches the reply code, and stripped from every line of
 * the text so that `serverText` holds only the server's words.
 */

/** One complete SMTP reply. */
export interface Reply {
  readonly code: number
  /** `5.7.8` and the like, when the server sends one (RFC 2034). */
  readonly enhancedCode: string | undefined
  /** The text of each line, without the code and without the enhanced code. */
  readonly lines: ReadonlyArray<string>
  /** The lines as received, without their line ends: `250-SIZE 1000`. */
  readonly raw: ReadonlyArray<string>
}

export interface ReplyLimits {
  /** The longest accepted reply line, line end included. */
  readonly maxLineOctets: number
  /** The largest accepted reply, all lines and line ends included. */
  readonly maxReplyOctets: number
}

export const defaultLimits: ReplyLimits = { maxLineOctets: 2048, maxReplyOctets: 65_536 }

/** What one call to `push` found. */
export type ParseResult =
  | { readonly _tag: "Replies"; readonly replies: ReadonlyArray<Reply> }
  | { readonly _tag: "Invalid"; readonly detail: string }

/** The text of a reply, lines joined by newlines: what `TransportError.serverText` holds. */
export const text = (reply: Reply): string => reply.lines.join("\n")

/** The reply as the server wrote it, lines joined by newlines: `250 2.0.0 Ok: queued`. */
export const format = (reply: Reply): string => reply.raw.join("\n")

/** 2xx */
export const isPositive = (reply: Reply): boolean => reply.code >= 200 && reply.code < 300

const linePattern = /^([2-5][0-9][0-9])(?:([ -])(.*))?$/s
const enhancedPattern = /^([245]\.\d{1,3}\.\d{1,3})(?:\s+|$)/

const LF = 0x0a
const CR = 0x0d

interface PendingLine {
  readonly code: number
  readonly text: string
  readonly raw: string
}

/**
 * Incremental reply parser. Feed it every byte the server sends with `push`;
 * after an `Invalid` result it stays invalid (the connection must be closed).
 */
export class ReplyParser {
  private partial: Array<Buffer> = []
  private partialOctets = 0
  private lines: Array<PendingLine> = []
  private replyOctets = 0
  private invalid: string | undefined

  constructor(private readonly limits: ReplyLimits = defaultLimits) {}

  /** Parses a chunk; returns the replies it completed, or why the input is not SMTP. */
  push(chunk: Uint8Array): ParseResult {
    if (this.invalid !== undefined) return { _tag: "Invalid", detail: this.invalid }
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)
    const replies: Array<Reply> = []
    let start = 0

    while (start < bytes.length) {
      const end = bytes.indexOf(LF, start)
      const piece = end === -1 ? bytes.subarray(start) : bytes.subarray(start, end + 1)
      this.partialOctets += piece.length
      this.replyOctets += piece.length
      if (this.partialOctets > this.limits.maxLineOctets) {
        return this.fail(`a reply line is longer than ${this.limits.maxLineOctets} octets`)
      }
      if (this.replyOctets > this.limits.maxReplyOctets) {
        return this.fail(`a reply is larger than ${this.limits.maxReplyOctets} octets`)
      }
      if (end === -1) {
        this.partial.push(Buffer.from(piece))
        break
      }

      const whole = this.partial.length === 0 ? piece : Buffer.concat([...this.partial, piece])
      this.partial = []
      this.partialOctets = 0
      const stripped = whole.subarray(0, whole.length - (whole[whole.length - 2] === CR ? 2 : 1))
      const done = this.line(stripped.toString("utf8"))
      if (typeof done === "string") return this.fail(done)
      if (done !== undefined) replies.push(done)
      start = end + 1
    }
    return { _tag: "Replies", replies }
  }

  /** Forgets everything received so far (after STARTTLS, RFC 3207 4.2). */
  reset(): void {
    this.partial = []
    this.partialOctets = 0
    this.lines = []
    this.replyOctets = 0
  }

  /** True when part of a reply has been received but not all of it. */
  get pending(): boolean {
    return this.partialOctets > 0 || this.lines.length > 0
  }

  /** Takes one line; returns a completed reply, nothing, or a violation. */
  private line(raw: string): Reply | string | undefined {
    const match = linePattern.exec(raw)
    if (match === null) return `the server sent a line that is not an SMTP reply: "${clip(raw)}"`
    const code = Number(match[1])
    const first = this.lines[0]
    if (first !== undefined && first.code !== code) {
      return `a multi-line reply changed its code from ${first.code} to ${code}`
    }
    this.lines.push({ code, text: match[3] ?? "", raw })
    if (match[2] === "-") return undefined

    const lines = this.lines
    this.lines = []
    this.replyOctets = 0
    const enhanced = enhancedPattern.exec(lines[0]!.text)
    const enhancedCode =
      enhanced !== null && enhanced[1]!.charAt(0) === String(code).charAt(0)
        ? enhanced[1]
        : undefined
    return {
      code,
      enhancedCode,
      lines: lines.map((l) =>
        enhancedCode !== undefined && l.text.startsWith(enhancedCode)
          ? l.text.slice(enhancedCode.length).trimStart()
          : l.text,
      ),
      raw: lines.map((l) => l.raw),
    }
  }

  private fail(detail: string): ParseResult {
    this.invalid = detail
    this.partial = []
    this.lines = []
    return { _tag: "Invalid", detail }
  }
}

/** Shows at most 80 characters of a bad line, control characters escaped. */
const clip = (raw: string): string => {
  const shown = raw.length > 80 ? `${raw.slice(0, 80)}...` : raw
  return JSON.stringify(shown).slice(1, -1)
}
