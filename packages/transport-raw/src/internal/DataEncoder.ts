/**
 * The message body as DATA carries it (RFC 5321 4.5.2 and 2.3.8), as a
 * streaming Transform: every line end becomes CRLF (a bare LF and a bare CR
 * each become CRLF; a CR and an LF split across two chunks stay one line
 * end), a line that starts with a dot gets a second dot, and a line longer
 * than 998 octets, line end excluded (RFC 5321 4.5.3.1.6, the doubled dot not
 * counted), fails the stream instead of being sent. The end-of-data line is
 * not part of the stream: `endOfData()` gives it once the stream has ended,
 * so the writer sends it exactly once and knows when it did.
 *
 * It holds at most one chunk at a time (plus one pending CR), so memory does
 * not grow with the size of the message; a chunk that needs no change (the
 * usual case for MIME output) is passed on without a copy. It does not fold or re-encode long
 * lines: MIME composition does that, and a line it left too long is a bug to
 * report, not to hide.
 */
import { Transform, type TransformCallback } from "node:stream"

const CR = 0x0d
const LF = 0x0a
const DOT = 0x2e

/** The longest line DATA may carry, line end excluded (RFC 5321 4.5.3.1.6). */
export const maxLineOctets = 998

/** A line of the message is longer than SMTP allows. */
export class LineTooLong extends Error {
  readonly _tag = "LineTooLong"
  constructor(readonly line: number) {
    super(`line ${line} of the message is longer than ${maxLineOctets} octets`)
  }
}

export class DataEncoder extends Transform {
  private atLineStart = true
  private pendingCr = false
  private lineOctets = 0
  private line = 1
  /** Octets produced so far (the message as sent, before the end-of-data line). */
  octets = 0

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.passesUnchanged(chunk)) {
      this.octets += chunk.length
      done(null, chunk)
      return
    }
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2)
    let o = 0
    let i = 0
    const n = chunk.length

    const lineBreak = (): void => {
      out[o++] = CR
      out[o++] = LF
      this.atLineStart = true
      this.lineOctets = 0
      this.line += 1
    }

    while (i < n) {
      if (this.pendingCr) {
        this.pendingCr = false
        lineBreak()
        if (chunk[i] === LF) {
          i += 1
          continue
        }
      }
      if (this.atLineStart) {
        if (chunk[i] === DOT) out[o++] = DOT
        this.atLineStart = false
      }

      let j = i
      while (j < n && chunk[j] !== CR && chunk[j] !== LF) j += 1
      this.lineOctets += j - i
      if (this.lineOctets > maxLineOctets) {
        done(new LineTooLong(this.line))
        return
      }
      chunk.copy(out, o, i, j)
      o += j - i
      if (j === n) break

      if (chunk[j] === LF) {
        lineBreak()
        i = j + 1
      } else if (j + 1 < n) {
        lineBreak()
        i = chunk[j + 1] === LF ? j + 2 : j + 1
      } else {
        this.pendingCr = true
        i = j + 1
      }
    }

    this.octets += o
    done(null, o === 0 ? undefined : out.subarray(0, o))
  }

  /**
   * The fast path, for the common chunk (MIME-encoded lines ending in CRLF,
   * none starting with a dot): when every line end in `chunk` is already
   * CRLF, no line starts with a dot and none is too long, the chunk goes out
   * as it is, without a copy. Updates the line state only when it does.
   */
  private passesUnchanged(chunk: Buffer): boolean {
    const n = chunk.length
    if (this.pendingCr || n === 0 || (this.atLineStart && chunk[0] === DOT)) return false
    let start = 0
    let lineOctets = this.lineOctets
    let lines = 0
    for (;;) {
      const lf = chunk.indexOf(LF, start)
      if (lf === -1) {
        if (chunk.indexOf(CR, start) !== -1 || lineOctets + (n - start) > maxLineOctets) {
          return false
        }
        lineOctets += n - start
        break
      }
      // The LF must close a CRLF inside this chunk, with no other CR on the line.
      if (lf === start || chunk.indexOf(CR, start) !== lf - 1) return false
      if (lineOctets + (lf - 1 - start) > maxLineOctets) return false
      if (lf + 1 < n && chunk[lf + 1] === DOT) return false
      lineOctets = 0
      lines += 1
      start = lf + 1
      if (start === n) break
    }
    this.lineOctets = lineOctets
    this.line += lines
    this.atLineStart = start === n && lineOctets === 0
    return true
  }

  override _flush(done: TransformCallback): void {
    if (this.pendingCr) {
      this.pendingCr = false
      this.atLineStart = true
      this.octets += 2
      done(null, Buffer.from("\r\n"))
      return
    }
    done()
  }

  /** The end-of-data line: `.` CRLF, preceded by a CRLF when the message did not end a line. */
  endOfData(): Buffer {
    return Buffer.from(this.atLineStart ? ".\r\n" : "\r\n.\r\n")
  }
}
