import { describe, expect, it } from "vitest"
import { format, ReplyParser, text } from "../src/internal/Reply.ts"

const parse = (parser: ReplyParser, input: string) => parser.push(Buffer.from(input, "utf8"))

const replies = (parser: ReplyParser, input: string) => {
  const result = parse(parser, input)
  if (result._tag !== "Replies") throw new Error(result.detail)
  return result.replies
}

describe("reply parser", () => {
  it("reads a single-line reply with its enhanced status code", () => {
    const [reply] = replies(new ReplyParser(), "250 2.1.0 Sender ok\r\n")
    expect(reply).toEqual({
      code: 250,
      enhancedCode: "2.1.0",
      lines: ["Sender ok"],
      raw: ["250 2.1.0 Sender ok"],
    })
  })

  it("joins a multi-line reply and strips the repeated enhanced code from every line", () => {
    const [reply] = replies(
      new ReplyParser(),
      "550-5.7.1 Relaying denied.\r\n550-5.7.1 Ask your admin.\r\n550 5.7.1 Bye\r\n",
    )
    expect(reply!.code).toBe(550)
    expect(reply!.enhancedCode).toBe("5.7.1")
    expect(text(reply!)).toBe("Relaying denied.\nAsk your admin.\nBye")
    expect(format(reply!)).toBe(
      "550-5.7.1 Relaying denied.\n550-5.7.1 Ask your admin.\n550 5.7.1 Bye",
    )
  })

  it("ignores an enhanced code whose class does not match the reply code", () => {
    const [reply] = replies(new ReplyParser(), "250 5.0.0 odd but ok\r\n")
    expect(reply!.enhancedCode).toBeUndefined()
    expect(reply!.lines).toEqual(["5.0.0 odd but ok"])
  })

  it("accepts a bare code without text, and bare LF line ends", () => {
    const parser = new ReplyParser()
    expect(replies(parser, "250\r\n354 go ahead\n").map((r) => r.code)).toEqual([250, 354])
  })

  it("assembles replies split at every byte boundary", () => {
    const input = "220-mail.example.com ESMTP\r\n220 ready\r\n250 ok\r\n"
    const parser = new ReplyParser()
    const seen = []
    for (const byte of Buffer.from(input)) {
      const result = parser.push(Buffer.from([byte]))
      if (result._tag !== "Replies") throw new Error(result.detail)
      seen.push(...result.replies)
    }
    expect(seen.map((r) => [r.code, r.lines])).toEqual([
      [220, ["mail.example.com ESMTP", "ready"]],
      [250, ["ok"]],
    ])
    expect(parser.pending).toBe(false)
  })

  it("returns several pipelined replies from one chunk", () => {
    const result = replies(new ReplyParser(), "250 ok\r\n250 ok\r\n550 no such user\r\n25")
    expect(result.map((r) => r.code)).toEqual([250, 250, 550])
  })

  it("refuses a multi-line reply whose code changes", () => {
    const result = parse(new ReplyParser(), "250-first\r\n251 second\r\n")
    expect(result).toMatchObject({
      _tag: "Invalid",
      detail: expect.stringContaining("250 to 251"),
    })
  })

  it("refuses lines that are not replies, and stays refused", () => {
    const parser = new ReplyParser()
    expect(parse(parser, "HTTP/1.1 400 Bad Request\r\n")._tag).toBe("Invalid")
    expect(parse(parser, "250 ok\r\n")._tag).toBe("Invalid")
    expect(parse(new ReplyParser(), "099 too low\r\n")._tag).toBe("Invalid")
    expect(parse(new ReplyParser(), "2500 four digits\r\n")._tag).toBe("Invalid")
  })

  it("refuses an over-long line once past the limit, without waiting for its end", () => {
    const parser = new ReplyParser({ maxLineOctets: 100, maxReplyOctets: 10_000 })
    expect(parse(parser, `250 ${"x".repeat(90)}`)._tag).toBe("Replies")
    expect(parse(parser, "x".repeat(20))).toMatchObject({
      _tag: "Invalid",
      detail: expect.stringContaining("longer than 100"),
    })
  })

  it("refuses a reply larger than the reply limit, even when every line is short", () => {
    const parser = new ReplyParser({ maxLineOctets: 100, maxReplyOctets: 1_000 })
    const result = parse(parser, "250-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(40))
    expect(result).toMatchObject({ _tag: "Invalid", detail: expect.stringContaining("1000") })
  })

  it("forgets partial input on reset, as STARTTLS requires", () => {
    const parser = new ReplyParser()
    parse(parser, "250-injected\r\n250-more")
    parser.reset()
    expect(parser.pending).toBe(false)
    expect(replies(parser, "220 fresh\r\n").map((r) => r.lines)).toEqual([["fresh"]])
  })

  it("decodes UTF-8 server text", () => {
    const [reply] = replies(new ReplyParser(), "550 Empfänger unbekannt\r\n")
    expect(reply!.lines).toEqual(["Empfänger unbekannt"])
  })
})
