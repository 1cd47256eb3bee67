import { Buffer } from "node:buffer"
import { Message } from "@spoc-mail/core"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { estimateSize, withProgress } from "../src/Progress.ts"

const sender = { address: "print@example.com", name: undefined, text: "print@example.com" }

const composeWith = (bytes: number) => {
  const message: Message.MailMessage = {
    to: ["a@example.com"],
    subject: "scan",
    attachments: [{ filename: "scan.bin", content: Buffer.alloc(bytes, 7) }],
  }
  return { message, composed: Effect.runSync(Message.compose(message, sender)) }
}

const drain = async (stream: NodeJS.ReadableStream): Promise<number> => {
  let total = 0
  for await (const chunk of stream) total += (chunk as Buffer).length
  return total
}

describe("progress of a large message", () => {
  it("reports bytes sent on a terminal, and the same bytes reach the server", async () => {
    const { message, composed } = composeWith(3 * 1024 * 1024)
    const written: Array<string> = []
    const output = { isTTY: true, write: (text: string) => written.push(text) }

    const wrapped = withProgress(composed, estimateSize(message), output)
    const total = await drain(wrapped.stream())

    expect(total).toBe(await drain(composed.stream()))
    expect(written.join("")).toMatch(/sending \d+\.\d MB of about 4\.0 MB/)
    expect(written[written.length - 1]).toMatch(/^\rsent \d+\.\d MB/)
  })

  it("adds nothing when stdout is not a terminal", () => {
    const { message, composed } = composeWith(3 * 1024 * 1024)
    const output = { isTTY: false, write: () => expect.fail("nothing may be written") }

    expect(withProgress(composed, estimateSize(message), output)).toBe(composed)
  })

  it("adds nothing for a small message on a terminal", () => {
    const { message, composed } = composeWith(10_000)
    const output = { isTTY: true, write: () => expect.fail("nothing may be written") }

    expect(withProgress(composed, estimateSize(message), output)).toBe(composed)
  })
})
