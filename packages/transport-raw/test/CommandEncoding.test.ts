import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import * as Command from "../src/internal/Command.ts"

const encoded = (command: Command.Command) => {
  const result = Command.encode(command)
  if ("_tag" in result) throw new Error(result.detail)
  return result
}

describe("command encoding", () => {
  it("writes a command with CRLF and shows it as written", () => {
    const mail = encoded(Command.mailFrom("a@example.com", ["SIZE=12", "BODY=8BITMIME"]))
    expect(mail.bytes.toString()).toBe("MAIL FROM:<a@example.com> SIZE=12 BODY=8BITMIME\r\n")
    expect(mail.display).toBe("MAIL FROM:<a@example.com> SIZE=12 BODY=8BITMIME")
  })

  it.each([
    ["CR", "a@example.com\rRCPT TO:<x@evil.test>"],
    ["LF", "a@example.com\nRCPT TO:<x@evil.test>"],
    ["NUL", "a@exa\u0000mple.com"],
  ])("refuses %s in an address", (name, address) => {
    const result = Command.encode(Command.rcptTo(address))
    expect(result).toMatchObject({ _tag: "Refused", verb: "RCPT" })
    expect((result as Command.Refused).detail).toContain(name)
  })

  it("refuses CR or LF in the EHLO name", () => {
    expect("_tag" in Command.encode(Command.ehlo("host\r\nMAIL FROM:<x>"))).toBe(true)
  })

  it("refuses CR, LF or NUL in a secret without showing it", () => {
    const result = Command.encode(Command.authResponse(Redacted.make("x")))
    expect("_tag" in result).toBe(false)
    const bad = Command.encode({ verb: "AUTH", parts: [Redacted.make("Xq7\nZw9")] })
    expect(bad).toMatchObject({ _tag: "Refused" })
    expect(JSON.stringify(bad)).not.toMatch(/Xq7|Zw9/)
  })

  it("refuses credentials with NUL, which would shift the AUTH PLAIN fields", () => {
    const refused = Command.authPlain("user", Redacted.make("Xq7\u0000Zw9"))
    expect(Command.isRefused(refused)).toBe(true)
    expect(JSON.stringify(refused)).not.toMatch(/Xq7|Zw9/)
    expect(Command.isRefused(Command.authPlain("us\rer", Redacted.make("p")))).toBe(true)
  })

  it("builds AUTH PLAIN from UTF-8 and masks the blob in the shown text", () => {
    const plain = Command.authPlain("user", Redacted.make("p€ss"))
    if (Command.isRefused(plain)) throw new Error(plain.detail)
    const result = encoded(plain)
    const blob = Buffer.from("\u0000user\u0000p€ss", "utf8").toString("base64")
    expect(result.bytes.toString()).toBe(`AUTH PLAIN ${blob}\r\n`)
    expect(result.display).toBe("AUTH PLAIN ****")
  })

  it("builds AUTH XOAUTH2 as user and bearer token between 0x01 marks, masked", () => {
    const command = Command.authXoauth2("printer@example.com", Redacted.make("ya29.Tk"))
    if (Command.isRefused(command)) throw new Error(command.detail)
    const result = encoded(command)
    const blob = Buffer.from("user=printer@example.com\u0001auth=Bearer ya29.Tk\u0001\u0001")
    expect(result.bytes.toString()).toBe(`AUTH XOAUTH2 ${blob.toString("base64")}\r\n`)
    expect(result.display).toBe("AUTH XOAUTH2 ****")
  })

  it("refuses a user or token holding 0x01, CR or LF, without showing the token", () => {
    for (const [user, token] of [
      ["printer", "ya29.Tk\u0001auth=Bearer x"],
      ["print\u0001er", "ya29.Tk"],
      ["printer", "ya29.Tk\r\nRSET"],
    ] as const) {
      const refused = Command.authXoauth2(user, Redacted.make(token))
      expect(Command.isRefused(refused)).toBe(true)
      expect(JSON.stringify(refused)).not.toContain("ya29")
    }
  })

  it("answers an XOAUTH2 error challenge with an empty line", () => {
    expect(encoded(Command.authCancelChallenge).bytes.toString()).toBe("\r\n")
  })

  it("encodes AUTH LOGIN answers as base64 of UTF-8 and masks them", () => {
    const result = encoded(Command.authResponse(Redacted.make("p€ss")))
    expect(result.bytes.toString()).toBe(`${Buffer.from("p€ss").toString("base64")}\r\n`)
    expect(result.display).toBe("****")
  })
})
