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
  it("doubles leading and lone dots, and ends with exactly one end-of-data (C14)", async () => {
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
    const wire = await encode(["line\r\n", ".", "x\n", "\n", "."])
    expect(wire).toBe("line\r\n..x\r\n\r\n..\r\n.\r\n")
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

  it("passes CRLF-clean chunks on unchanged and keeps the line state across them", async () => {
    expect(await encode(["a\r\nb", ".c\r\n", ".d\r\n"])).toBe("a\r\nb.c\r\n..d\r\n.\r\n")
    const clean = Buffer.from("QUJD\r\nREVG\r\n")
    const encoder = new DataEncoder()
    const out: Array<Buffer> = []
    encoder.on("data", (chunk: Buffer) => out.push(chunk))
    encoder.end(clean)
    await new Promise((resolve) => encoder.on("end", resolve))
    expect(out[0]).toBe(clean)
  })

  it("matches a whole-message reference on random input split at random points", async () => {
    let seed = 7
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    for (let round = 0; round < 300; round += 1) {
      const input = Array.from(
        { length: random(60) },
        () => ["a", "b", ".", "\r", "\n", "\r\n"][random(6)],
      ).join("")
      const chunks: Array<string> = []
      for (let at = 0; at < input.length;) {
        const size = 1 + random(8)
        chunks.push(input.slice(at, at + size))
        at += size
      }
      const normalised = input.replace(/\r\n|\r|\n/g, "\r\n")
      const stuffed = normalised.replace(/(^|\r\n)\./g, "$1..")
      const ended = stuffed === "" || stuffed.endsWith("\r\n")
      const reference = `${stuffed}${ended ? "" : "\r\n"}.\r\n`
      expect(await encode(chunks), JSON.stringify(chunks)).toBe(reference)
    }
  })

  it("counts the octets it produced", async () => {
    const encoder = new DataEncoder()
    Readable.from([Buffer.from("a\n.b\n")]).pipe(encoder)
    for await (const _ of encoder) void _
    expect(encoder.octets).toBe("a\r\n..b\r\n".length)
  })
})
