import { describe, expect, it } from "vitest"
import * as Capabilities from "../src/internal/Capabilities.ts"
import { ReplyParser } from "../src/internal/Reply.ts"

const ehlo = (...lines: Array<string>) => {
  const wire = lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}\r\n`).join("")
  const result = new ReplyParser().push(Buffer.from(wire))
  if (result._tag !== "Replies") throw new Error(result.detail)
  return Capabilities.fromEhlo(result.replies[0]!)
}

describe("EHLO capabilities", () => {
  it("sees STARTTLS on the last line, without a dash (C07)", () => {
    expect(ehlo("mail.example.com", "PIPELINING", "STARTTLS").startTls).toBe(true)
  })

  it("reads keywords and mechanisms in any case", () => {
    const caps = ehlo("mx", "starttls", "Auth plain Login", "8bitmime", "SmtpUtf8", "pipelining")
    expect(caps.startTls).toBe(true)
    expect([...caps.authMechanisms]).toEqual(["PLAIN", "LOGIN"])
    expect(caps.eightBitMime && caps.smtpUtf8 && caps.pipelining).toBe(true)
  })

  it("understands the old AUTH= form, alone and next to the standard one (C07)", () => {
    expect([...ehlo("mx", "AUTH=LOGIN").authMechanisms]).toEqual(["LOGIN"])
    const both = ehlo("mx", "AUTH GSSAPI NTLM", "AUTH=LOGIN PLAIN")
    expect(both.auth).toBe(true)
    expect([...both.authMechanisms]).toEqual(["GSSAPI", "NTLM", "LOGIN", "PLAIN"])
  })

  it("reads the SIZE limit, and SIZE without a number as no limit", () => {
    expect(ehlo("mx", "SIZE 37748736").size).toBe(37748736)
    expect(ehlo("mx", "SIZE").size).toBe(0)
    expect(ehlo("mx", "PIPELINING").size).toBeUndefined()
  })

  it("does not read the greeting line as a capability", () => {
    expect(ehlo("STARTTLS", "PIPELINING").startTls).toBe(false)
  })

  it("offers nothing after HELO", () => {
    expect(Capabilities.none.startTls || Capabilities.none.auth).toBe(false)
  })
})
