import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as Message from "../src/Message.ts"

const sender = {
  address: "print@example.com",
  name: "Print Room",
  text: "Print Room <print@example.com>",
}

const text = async (composed: Message.ComposedMessage): Promise<string> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of composed.stream()) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString("latin1")
}

const fail = <A>(effect: Effect.Effect<A, Message.MessageError>) =>
  Effect.runSync(Effect.flip(effect))

describe("composing a message", () => {
  it("streams the same bytes for every attempt, blind copies out of the headers", async () => {
    const composed = Effect.runSync(
      Message.compose(
        { to: ["a@example.com"], bcc: ["hidden@example.com"], subject: "Scan", text: "x" },
        sender,
      ),
    )

    const first = await text(composed)
    expect(await text(composed)).toBe(first)
    expect(composed.envelope).toEqual({
      from: "print@example.com",
      to: ["a@example.com", "hidden@example.com"],
    })
    expect(first).toContain(`Message-ID: ${composed.messageId}`)
    expect(first).not.toMatch(/hidden@example\.com/)
  })

  it("refuses a line break in a header before anything is sent", () => {
    const error = fail(
      Message.compose({ to: ["a@example.com"], subject: "hi\r\nBcc: evil@example.com" }, sender),
    )

    expect(error.field).toBe("subject")
  })

  it("refuses a message without recipients and names a bad address", () => {
    expect(fail(Message.compose({ to: [], subject: "s" }, sender)).field).toBe("to")
    expect(fail(Message.compose({ to: ["not an address"], subject: "s" }, sender)).detail).toMatch(
      /"not an address" is not a mail address/,
    )
  })

  it("marks a message whose envelope needs SMTPUTF8", () => {
    const composed = Effect.runSync(
      Message.compose({ to: ["jiří@example.cz"], subject: "s" }, sender),
    )

    expect(composed.needsSmtpUtf8).toBe(true)
  })
})

describe("a ready-made .eml message", () => {
  const eml = Buffer.from(
    "From: Print Room <print@example.com>\r\nTo: a@example.com,\r\n b@example.com\r\n" +
      "Bcc: hidden@example.com\r\nSubject: note\r\n\r\nBcc: stays in the body\r\n",
    "latin1",
  )

  it("takes the envelope from the headers and drops the Bcc header only", async () => {
    const composed = Effect.runSync(Message.fromEml(eml))

    expect(composed.envelope).toEqual({
      from: "print@example.com",
      to: ["a@example.com", "b@example.com", "hidden@example.com"],
    })
    const sent = await text(composed)
    expect(sent).not.toMatch(/^Bcc: hidden/m)
    expect(sent).toContain("\r\n\r\nBcc: stays in the body\r\n")
    expect(sent).toMatch(/^Message-ID: <.+@spoc-mail>\r\n/)
  })

  it("lets the caller give the recipients", () => {
    const composed = Effect.runSync(Message.fromEml(eml, { to: ["only@example.com"] }))

    expect(composed.envelope.to).toEqual(["only@example.com"])
  })
})

describe("recipient addresses", () => {
  const to = (value: string) => Message.compose({ to: [value], subject: "s" }, sender)

  it("refuses a second address hidden after a line break or a space", () => {
    for (const value of [
      "ops@example.com\r\nRCPT TO:<evil@evil.test>",
      "a@example.com\nb@example.com",
      "ops@example.com evil@evil.test",
      "Print Room <print@example.com> ; not a comment",
    ]) {
      expect(Effect.runSync(Effect.flip(to(value))).field).toBe("to")
    }
  })

  it("reads lists, display names and quoted commas", () => {
    const composed = Effect.runSync(
      to('"Doe, John" <j@example.com>, x@example.com,Tiskové služby <tisk@example.cz>'),
    )

    expect(composed.envelope.to).toEqual(["j@example.com", "x@example.com", "tisk@example.cz"])
  })
})
