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
    const composed = Effect.runSync(Message.fromEml(eml, { sender }))

    expect(composed.envelope).toEqual({
      from: "print@example.com",
      to: ["a@example.com", "b@example.com", "hidden@example.com"],
    })
    const sent = await text(composed)
    expect(sent).not.toMatch(/^Bcc: hidden/m)
    expect(sent).toContain("\r\n\r\nBcc: stays in the body\r\n")
    expect(sent).toMatch(/^Message-ID: <.+@spoc-mail>\r\n/m)
  })

  it("lets the caller give the recipients", () => {
    const composed = Effect.runSync(Message.fromEml(eml, { sender, to: ["only@example.com"] }))

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

describe("lines SMTP cannot carry", () => {
  const maxLine = (raw: string) => Math.max(...raw.split("\r\n").map((line) => line.length))

  it("folds a long subject of words, and refuses one word longer than a header line", async () => {
    const words = Message.compose({ to: ["a@example.com"], subject: "word ".repeat(600) }, sender)
    expect(maxLine(await text(Effect.runSync(words)))).toBeLessThanOrEqual(998)

    const error = fail(
      Message.compose({ to: ["a@example.com"], subject: "s".repeat(2000) }, sender),
    )
    expect(error.field).toBe("subject")
    expect(error.detail).toContain("a word of 2000 characters")
    expect(error.message.length).toBeLessThan(400)
  })

  it("refuses a sender with a line break without repeating it", () => {
    const from = "a@example.com\r\nBcc: evil@evil.test"
    const error = fail(Message.compose({ to: ["b@example.com"], from, subject: "s" }, sender))
    expect(error.field).toBe("from")
    expect(error.message).not.toMatch(/[\r\n]|evil/)
  })

  it("refuses a sender name or header with such a word", () => {
    const name = `${"n".repeat(1000)} <a@example.com>`
    expect(
      fail(Message.compose({ to: ["b@example.com"], from: name, subject: "s" }, sender)).field,
    ).toBe("from")
    const headers = { "X-Job": "j".repeat(1000) }
    expect(
      fail(Message.compose({ to: ["b@example.com"], subject: "s", headers }, sender)).field,
    ).toBe("X-Job")
  })

  it("refuses an .eml file with a line over 998 octets, naming the line", () => {
    const eml = Buffer.from(`To: a@example.com\r\nSubject: s\r\n\r\nok\r\n${"x".repeat(999)}\r\n`)
    const error = fail(Message.fromEml(eml, { sender }))
    expect(error.field).toBe("eml")
    expect(error.detail).toContain("line 5 of the file is 999 octets long")
  })

  it("refuses addresses longer than RFC 5321 allows, without repeating them whole", () => {
    const local65 = fail(
      Message.compose({ to: [`${"l".repeat(65)}@x.example`], subject: "s" }, sender),
    )
    expect(local65.detail).toContain("is longer than a mail address may be")
    for (const address of [`${"l".repeat(300)}@example.com`, `a@${"d".repeat(300)}.com`]) {
      const error = fail(Message.compose({ to: [address], subject: "s" }, sender))
      expect(error.detail).toContain("is longer than a mail address may be")
      expect(error.detail).toMatch(/…" \(\d+ characters\)/)
    }
    const longest = `${"l".repeat(64)}@example.com`
    expect(
      Effect.runSync(Message.compose({ to: [longest], subject: "s" }, sender)).envelope.to,
    ).toEqual([longest])
  })
})

describe("an .eml file without From or Date", () => {
  const bare = Buffer.from("To: a@example.com\r\nSubject: note\r\n\r\nhello\r\n", "latin1")

  it("gets the configured sender and a Date, as RFC 5322 requires", async () => {
    const composed = Effect.runSync(
      Message.fromEml(bare, {
        sender: { address: "tisk@example.cz", name: "Tiskové služby", text: "" },
      }),
    )

    const sent = await text(composed)
    expect(composed.envelope.from).toBe("tisk@example.cz")
    expect(sent).toMatch(/^From: =\?UTF-8\?Q\?.+\?= <tisk@example\.cz>\r\n/)
    expect(sent).toMatch(/\r\nDate: \w{3}, \d{2} \w{3} \d{4} [\d:]{8} GMT\r\n/)
  })

  it("takes --from over the configured sender", async () => {
    const composed = Effect.runSync(
      Message.fromEml(bare, { sender, from: "Scanner <scan@example.com>" }),
    )

    expect(composed.envelope.from).toBe("scan@example.com")
    expect(await text(composed)).toMatch(/^From: Scanner <scan@example\.com>\r\n/)
  })
})
