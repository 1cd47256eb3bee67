/**
 * Progress of a large message on a terminal: the bytes streamed to the
 * server so far, against an estimate of the whole (attachments grow by a
 * third in base64). Shown only when stdout is a terminal and the message is
 * large; otherwise the message is passed through untouched, so scripts and
 * logs see nothing extra.
 */
import { statSync } from "node:fs"
import { PassThrough } from "node:stream"
import type { Message } from "@spoc-mail/core"

/** Messages smaller than this finish too quickly for progress to help. */
export const largeMessageBytes = 1024 * 1024

const megabytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`

/** The composed size of a message, roughly: text, HTML and base64 attachments. */
export const estimateSize = (message: Message.MailMessage): number => {
  const attachments = (message.attachments ?? []).reduce((sum, a) => {
    const raw = a.path !== undefined ? statSync(a.path).size : (a.content?.length ?? 0)
    return sum + Math.ceil((raw * 4) / 3)
  }, 0)
  return attachments + (message.text?.length ?? 0) + (message.html?.length ?? 0)
}

export interface ProgressOutput {
  readonly isTTY: boolean | undefined
  readonly write: (text: string) => unknown
}

/**
 * Wraps the message so that every attempt reports its progress on `output`;
 * returns it unchanged when `output` is not a terminal or the message is small.
 */
export const withProgress = (
  composed: Message.ComposedMessage,
  estimate: number,
  output: ProgressOutput = process.stdout,
): Message.ComposedMessage => {
  if (output.isTTY !== true || estimate < largeMessageBytes) return composed
  return {
    ...composed,
    stream: () => {
      let sent = 0
      let shown = 0
      const counter = new PassThrough()
      counter.on("data", (chunk: Buffer) => {
        sent += chunk.length
        const now = Date.now()
        if (now - shown < 100) return
        shown = now
        const percent = Math.min(99, Math.floor((sent / estimate) * 100))
        output.write(`\rsending ${megabytes(sent)} of about ${megabytes(estimate)} (${percent}%)`)
      })
      counter.on("end", () => output.write(`\rsent ${megabytes(sent)}${" ".repeat(24)}\n`))
      return composed.stream().pipe(counter)
    },
  }
}
