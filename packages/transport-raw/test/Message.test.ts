import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { spawn } from "node:child_process"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Readable, Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { fileURLToPath } from "node:url"
import { Script, startScriptedSmtpServer } from "@spoc-mail/testkit"
import { afterEach, describe, expect, it } from "vitest"
import { make } from "../src/RawTransport.ts"
import { compose, policyFor, run, success, unstuff } from "./support/harness.ts"

const { lines } = Script

const closers: Array<() => Promise<void> | void> = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

const bytesOf = async (stream: NodeJS.ReadableStream): Promise<Buffer> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** The repository's scripts/smtp-sink.mjs, in a child process so its memory is its own. */
const startSink = async () => {
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL("../../../scripts/smtp-sink.mjs", import.meta.url))],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  )
  closers.push(() => {
    child.kill()
  })
  const port = await new Promise<number>((resolve) =>
    child.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
  )
  return { host: "127.0.0.1", port }
}

describe("the message on the wire", () => {
  it("arrives intact with dots, bare line ends, a long line, one end-of-data (C14)", async () => {
    const server = await startScriptedSmtpServer({
      script: [
        Script.send(lines("220 mx.test")),
        Script.expect(/^EHLO/i, lines("250 mx.test")),
        Script.expect(/^MAIL/i, lines("250 Ok")),
        Script.expect(/^RCPT/i, lines("250 Ok")),
        Script.expect(/^DATA/i, lines("354 go")),
        Script.data(lines("250 Ok")),
      ],
    })
    closers.push(server.close)
    const text = `first\n.\n.starts with a dot\nbare LF\nbare CR\rend\r\n${"y".repeat(2_000)}\n.`
    const message = await compose({ text })

    success(await run(make().send(message, policyFor(server))))

    expect(server.dataTransfers).toHaveLength(1)
    const wire = server.dataTransfers[0]!.toString("latin1")
    expect(wire.split("\r\n").every((line) => line.length <= 998)).toBe(true)
    expect(wire.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/)
    const composed = (await bytesOf(message.stream()))
      .toString("latin1")
      .replace(/\r?\n|\r/g, "\r\n")
    expect(unstuff(server.dataTransfers[0]!)).toBe(
      composed.endsWith("\r\n") ? composed : `${composed}\r\n`,
    )
    const decoded = Buffer.from(
      composed
        .split("\r\n\r\n")
        .slice(1)
        .join("\r\n\r\n")
        .replace(/=\r\n/g, "")
        .replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))),
      "latin1",
    ).toString("utf8")
    expect(decoded).toContain(".starts with a dot")
    expect(decoded).toContain("y".repeat(2_000))
  })

  it.each([
    ["an attachment that cannot be read", "could not be read"],
    ["a line over 998 octets", "longer than 998 octets"],
  ])("sends no end-of-data when the message holds %s", async (kind, detail) => {
    const server = await startScriptedSmtpServer({
      script: [
        Script.send(lines("220 mx.test")),
        Script.expect(/^EHLO/i, lines("250 mx.test")),
        Script.expect(/^MAIL/i, lines("250 Ok")),
        Script.expect(/^RCPT/i, lines("250 Ok")),
        Script.expect(/^DATA/i, lines("354 go")),
        Script.data(lines("250 Ok")),
      ],
    })
    closers.push(server.close)
    const composed = await compose({
      attachments: [{ filename: "gone.pdf", path: join(tmpdir(), "spoc-mail-no-such-file.pdf") }],
    })
    const message =
      kind === "a line over 998 octets"
        ? {
            ...composed,
            stream: () => Readable.from([Buffer.from(`Subject: x\r\n\r\n${"z".repeat(999)}\r\n`)]),
          }
        : composed

    const ran = await run(make().send(message, policyFor(server)))

    if (ran.result._tag === "Success") throw new Error("expected a failure")
    expect(ran.result.failure).toMatchObject({ reason: "InvalidArgument", phase: "message" })
    expect(ran.result.failure.detail).toContain(detail)
    await expect.poll(() => server.transcript.some((e) => e.kind === "closed")).toBe(true)
    expect(server.dataTransfers).toEqual([])
  })

  it("streams a large attachment from disk with flat memory", async () => {
    const folder = mkdtempSync(join(tmpdir(), "raw-transport-"))
    closers.push(() => rmSync(folder, { recursive: true, force: true }))
    const file = join(folder, "scan.bin")
    const block = Buffer.alloc(1024 * 1024, 0x5a)
    writeFileSync(file, Buffer.alloc(0))
    for (let i = 0; i < 64; i += 1) writeFileSync(file, block, { flag: "a" })
    const sink = await startSink()
    const message = await compose({ attachments: [{ filename: "scan.bin", path: file }] })
    // Composition (core's, shared by every transport) once, so that V8's heap has grown to
    // its working size before the transport is measured.
    await pipeline(message.stream(), new Writable({ write: (_chunk, _encoding, done) => done() }))

    const baseline = process.memoryUsage.rss()
    let peak = baseline
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss())
    }, 5)
    const ran = await run(make().send(message, policyFor(sink))).finally(() =>
      clearInterval(sampler),
    )
    peak = Math.max(peak, process.memoryUsage.rss())

    expect(success(ran).response).toBe("250 2.0.0 Ok")
    expect((peak - baseline) / 1024 / 1024).toBeLessThan(32)
  })
})
