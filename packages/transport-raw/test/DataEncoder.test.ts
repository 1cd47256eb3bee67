import { Readable } from "node:stream"
import { describe, expect, it } from "vitest"
import { DataEncoder, LineTooLong } from "../src/internal/DataEncoder.ts"

/** Runs `chunks` through the encoder and appends the end-of-data line, as the socket does. */
const encode = async (chunks: ReadonlyArray<string | Buffer>): Promise<string> => {
  const encoder = new DataEncoder()
  const out: Array<Buffer> = []
  Readable.from(chunks.map((c) => Buffer.from(c))).pipe(encoder)
  for await (const chunk of encoder) out.push(chunk as Buffer)
  out.push(encoder.endOfData())
  return Buffer.concat(out).toString("latin1")
}

const endsOfData = (wire: string) => wire.split("\r\n.\r\n").length - 1

describe("DATA encoding", () => {
  it("doubles a leading dot and a lone dot, and ends with exactly one end-of-data (C14)", async () => {
    const wire = await encode(["Subject: x\r\n\r\n.\r\n.hidden\r\nlast line"])
    expect(wire).toBe("Subject: x\r\n\r\n..\r\n..hidden\r\nlast line\r\n.\r\n")
    expect(endsOfData(wire)).toBe(1)
  })

  it("turns bare LF and bare CR into CRLF, keeping CRLF as it is (C14)", async () => {
    expect(await encode(["a\nb\rc\r\nd\r\n"])).toBe("a\r\nb\r\nc\r\nd\r\n.\r\n")
  })

  it("keeps a CRLF split across chunks as one line end", async () => {
    expect(await encode(["a\r", "\nb\r", "", "\n.c\r"])).toBe("a\r\nb\r\n..c\r\n.\r\n")
  })

  it("stuffs a dot that starts a chunk at the start of a line", async () => {
    expect(await encode(["line\r\n", ".", "x\n", "\n", "."])).toBe("line\r\n..x\r\n\r\n..\r\n.\r\n")
  })

  it("sends only the end-of-data line for an empty message", async () => {
    expect(await encode([])).toBe(".\r\n")
  })

  it("accepts a line of 998 octets, not counting a doubled dot", async () => {
    const wire = await encode([`.${"x".repeat(997)}\r\n`])
    expect(wire.length).toBe(999 + 2 + 3)
  })

  it("fails on a line of 999 octets, even one split across chunks", async () => {
    await expect(encode(["x".repeat(500), "x".repeat(499), "\r\n"])).rejects.toBeInstanceOf(
      LineTooLong,
    )
  })

  it("keeps every byte that is not a line end or a leading dot", async () => {
    const bytes = Buffer.from(
      Array.from({ length: 256 }, (_, i) => i).filter((b) => b !== 10 && b !== 13),
    )
    const wire = Buffer.from(await encode([bytes, "\r\n"]), "latin1")
    expect(wire.subarray(0, bytes.length).equals(bytes)).toBe(true)
  })

  it("counts the octets it produced", async () => {
    const encoder = new DataEncoder()
    Readable.from([Buffer.from("a\n.b\n")]).pipe(encoder)
    for await (const _ of encoder) void _
    expect(encoder.octets).toBe("a\r\n..b\r\n".length)
  })
})
