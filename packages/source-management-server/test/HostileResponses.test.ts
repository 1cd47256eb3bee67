import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import type { ConfigSource } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as ManagementServerSource from "../src/ManagementServerSource.ts"
import {
  fixtureTrust,
  jsonReply,
  type Reply,
  type ScriptedHttpServer,
  startScriptedHttp,
  temporaryFolder,
  valueOf,
} from "./support/Harness.ts"

let folder: ReturnType<typeof temporaryFolder>
let scripted: ScriptedHttpServer

beforeEach(async () => {
  folder = temporaryFolder()
  scripted = await startScriptedHttp()
})

afterEach(async () => {
  await scripted.close()
  folder.remove()
})

const cacheDir = () => join(folder.path, "cache")

const sourceFor = async (
  url: string,
  extra: Partial<ManagementServerSource.ManagementServerSourceOptions> = {},
): Promise<ConfigSource.ConfigSource> =>
  ManagementServerSource.make({
    url,
    controllerId: "spoc-brn01-a",
    trust: await fixtureTrust(),
    cacheDir: cacheDir(),
    ...extra,
  })

const load = (source: ConfigSource.ConfigSource) => Effect.runPromise(source.load)

const cacheBytes = (): string => {
  const [file] = readdirSync(cacheDir())
  return readFileSync(join(cacheDir(), file!), "utf8")
}

const good = {
  mailserver: "smtp.example.com",
  mailSmtpPort: 587,
  mailpass: "good-secret-1",
  allowCustomCipherSuitesForOutboundCommunication: false,
}

/** Loads once from a good answer, then from `bad`; returns the second snapshot. */
const afterGoodThen = async (bad: Reply, extra = {}) => {
  const source = await sourceFor(scripted.url, extra)
  scripted.reply = () => jsonReply(good, "r1")
  await load(source)
  const before = cacheBytes()
  scripted.reply = () => bad
  const snapshot = await load(source)
  return { snapshot, before, after: cacheBytes() }
}

const refusedWhole = (snapshot: ConfigSource.SourceSnapshot, reason: RegExp): void => {
  expect(valueOf(snapshot, "mailserver")).toBe("smtp.example.com")
  expect(valueOf(snapshot, "mailSmtpPort")).toBe("587")
  expect(snapshot.entries.every((e) => e.origin._tag === "Cache")).toBe(true)
  expect(snapshot.warnings).toHaveLength(1)
  expect(snapshot.warnings[0]!.message).toMatch(reason)
  expect(snapshot.warnings[0]!.message).toMatch(/using the cached copy of revision r1/)
}

describe("a response that fails the checks is refused whole and the cached copy kept", () => {
  const cases: ReadonlyArray<readonly [string, Reply, RegExp]> = [
    [
      "a body that is not JSON",
      { headers: { "Content-Type": "application/json" }, body: "<html>oops</html>" },
      /not valid JSON/,
    ],
    [
      "an HTML page from a proxy",
      { headers: { "Content-Type": "text/html" }, body: "<html>login</html>" },
      /is text\/html, not JSON or YAML/,
    ],
    [
      "a value with CR LF",
      jsonReply({ ...good, mailserver: "evil.test", mailfrom: "a@b.c\r\nBcc: x@y.z" }, "r2"),
      /value of mailfrom contains a line break/,
    ],
    ["a value with NUL", jsonReply({ ...good, mailuser: "svc\u0000" }, "r2"), /NUL/],
    ["a list value", jsonReply({ ...good, mailserver: ["a", "b"] }, "r2"), /is a list/],
    ["an object value", jsonReply({ ...good, mailSmtpPort: { n: 1 } }, "r2"), /is an object/],
    ["a null value", jsonReply({ ...good, mailuser: null }, "r2"), /mailuser is null/],
    ["another schema version", jsonReply(good, "r2", { schemaVersion: 2 }), /schemaVersion is 2/],
    ["an unknown field", jsonReply(good, "r2", { extra: true }), /unknown fields: extra/],
    [
      "a missing revision",
      {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ schemaVersion: 1, settings: good }),
      },
      /revision is missing/,
    ],
    [
      "settings that are a list",
      {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ schemaVersion: 1, revision: "r2", settings: [] }),
      },
      /settings is not an object/,
    ],
    [
      "a port out of range",
      jsonReply({ ...good, mailSmtpPort: 70000 }, "r2"),
      /the value of mailSmtpPort is refused: "70000" is not a port number/,
    ],
    [
      "an unknown encryption mode",
      jsonReply({ ...good, mailSmtpEncryption: "TLS" }, "r2"),
      /mailSmtpEncryption is refused: "TLS" is not an encryption mode/,
    ],
    [
      "a timeout that is not a number",
      jsonReply({ ...good, mailSmtpTimeout: "46five" }, "r2"),
      /mailSmtpTimeout is refused: "46five" is not a timeout/,
    ],
    [
      "a malformed mail server",
      jsonReply({ ...good, mailserver: "smtp.example.com:25" }, "r2"),
      /mailserver is refused: "smtp\.example\.com:25" includes a port/,
    ],
    [
      "an unknown cipher suite",
      jsonReply({ ...good, customCipherSuitesForOutboundCommunication: "TLS_NOPE" }, "r2"),
      /customCipherSuitesForOutboundCommunication is refused: "TLS_NOPE"/,
    ],
    [
      "a body that is not UTF-8",
      { headers: { "Content-Type": "application/json" }, body: Buffer.from([0x7b, 0xff, 0x7d]) },
      /not valid UTF-8/,
    ],
  ]

  for (const [name, reply, reason] of cases) {
    it(`refuses ${name}`, async () => {
      const { snapshot, before, after } = await afterGoodThen(reply)

      refusedWhole(snapshot, reason)
      expect(after).toBe(before)
    })
  }

  it("refuses a body larger than maxBytes, announced or not", async () => {
    const big = "x".repeat(4096)
    const announced = await afterGoodThen(
      { headers: { "Content-Type": "application/json", "Content-Length": "4096" }, body: big },
      { maxBytes: 2048 },
    )
    scripted.reply = () => ({
      headers: { "Content-Type": "application/json", "Transfer-Encoding": "chunked" },
      body: big,
    })
    const streamed = await load(await sourceFor(scripted.url, { maxBytes: 2048 }))

    refusedWhole(announced.snapshot, /larger than the 2048 bytes allowed \(4096 bytes announced\)/)
    refusedWhole(streamed, /larger than the 2048 bytes allowed \(more was sent\)/)
    expect(announced.after).toBe(announced.before)
  })

  it("names the refused key, the URL and the revision, never a secret's value", async () => {
    const { snapshot } = await afterGoodThen(
      jsonReply({ ...good, mailpass: "new-secret-9", mailSmtpPort: "2525x" }, "r2"),
    )

    const warning = snapshot.warnings[0]!
    expect(warning.key).toBe("mailSmtpPort")
    expect(warning.message).toContain(
      `its response ${scripted.url}/api/v1/controllers/spoc-brn01-a/mail-settings @ r2 ` +
        'was refused whole: the value of mailSmtpPort is refused: "2525x" is not a port number',
    )
    expect(warning.fix).toMatch(/^correct mailSmtpPort on the Management Server: use a whole/)
    expect(valueOf(snapshot, "mailpass")).toBe("good-secret-1")
    expect(JSON.stringify(snapshot)).not.toContain("new-secret-9")
  })

  it("leaves the layer empty for a bad value when there is no cached copy", async () => {
    scripted.reply = () => jsonReply({ ...good, mailSmtpEncryption: "SMTPS" }, "r1")

    const snapshot = await load(await sourceFor(scripted.url))

    expect(snapshot.entries).toEqual([])
    expect(snapshot.warnings).toEqual([
      expect.objectContaining({
        key: "mailSmtpEncryption",
        message: expect.stringMatching(
          /@ r1 was refused whole: .*"SMTPS" is not an encryption mode; there is no cached copy/,
        ),
      }),
    ])
    expect(readdirSync(folder.path)).not.toContain("cache")
  })

  it("reads a cached copy back through the same value checks", async () => {
    scripted.reply = () => jsonReply(good, "r1")
    const source = await sourceFor(scripted.url)
    await load(source)
    const [file] = readdirSync(cacheDir())
    const stored = JSON.parse(cacheBytes())
    stored.response.settings.mailSmtpPort = 70000
    writeFileSync(join(cacheDir(), file!), JSON.stringify(stored))
    scripted.reply = () => ({ status: 503, body: "" })

    const snapshot = await load(source)

    expect(snapshot.entries).toEqual([])
    expect(snapshot.warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(/is damaged and was ignored: the value of mailSmtpPort is refused/),
      expect.stringMatching(/HTTP 503; there is no cached copy/),
    ])
  })

  it("never quotes the refused body, which may hold a password", async () => {
    const { snapshot } = await afterGoodThen({
      headers: { "Content-Type": "application/json" },
      body: '{"schemaVersion":1,"revision":"r2","settings":{"mailpass":"leaked-pass-7" oops}}',
    })
    const yaml = await afterGoodThen({
      headers: { "Content-Type": "application/yaml" },
      body: "schemaVersion: 1\nrevision: r2\nsettings:\n  mailpass: leaked-pass-7\n   bad: [\n",
    })

    expect(JSON.stringify(snapshot)).not.toContain("leaked-pass-7")
    expect(JSON.stringify(yaml.snapshot)).not.toContain("leaked-pass-7")
    expect(yaml.snapshot.warnings[0]!.message).toMatch(/not valid YAML \(\w+ at line \d\)/)
  })
})

describe("answers other than a good 200", () => {
  it("reads a YAML body", async () => {
    scripted.reply = () => ({
      headers: { "Content-Type": "application/yaml; charset=utf-8", ETag: 'W/"y1"' },
      body: "schemaVersion: 1\nrevision: y1\nsettings:\n  mailSmtpPort: 465\n  mailserver: a.b\n",
    })

    const snapshot = await load(await sourceFor(scripted.url))

    expect(snapshot.warnings).toEqual([])
    expect(valueOf(snapshot, "mailSmtpPort")).toBe("465")
    expect(snapshot.entries[0]!.origin).toMatchObject({ _tag: "Remote", revision: "y1" })
  })

  it("does not follow a redirect", async () => {
    const target = await startScriptedHttp()
    target.reply = () => jsonReply(good)
    try {
      scripted.reply = () => ({ status: 302, headers: { Location: target.url }, body: "" })

      const snapshot = await load(await sourceFor(scripted.url))

      expect(snapshot.entries).toEqual([])
      expect(snapshot.warnings[0]!.message).toMatch(/redirects \(302\) to http:\/\/127\.0\.0\.1/)
      expect(target.requests).toHaveLength(0)
    } finally {
      await target.close()
    }
  })

  it("reports the server's own error text for an error status", async () => {
    const { snapshot } = await afterGoodThen({
      status: 503,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ error: "maintenance until 22:00" }),
    })

    refusedWhole(snapshot, /answered HTTP 503: maintenance until 22:00/)
  })

  it("asks with If-None-Match only when it holds a copy with an ETag", async () => {
    scripted.reply = () => jsonReply(good, "r1")
    const source = await sourceFor(scripted.url)

    await load(source)
    await load(source)

    expect(scripted.requests.map((h) => h["if-none-match"])).toEqual([undefined, '"r1"'])
    expect(scripted.requests[0]!.accept).toMatch(/application\/json/)
  })

  it("ignores a damaged cache file with a warning and replaces it", async () => {
    scripted.reply = () => jsonReply(good, "r1")
    const source = await sourceFor(scripted.url)
    await load(source)
    const [file] = readdirSync(cacheDir())
    writeFileSync(join(cacheDir(), file!), "{ not json")

    const snapshot = await load(source)

    expect(valueOf(snapshot, "mailserver")).toBe("smtp.example.com")
    expect(snapshot.warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(/cached copy .* is damaged and was ignored: it is not valid JSON/),
    ])
    expect(JSON.parse(cacheBytes()).response.revision).toBe("r1")
  })
})

describe("timeouts", () => {
  it("gives up on a TLS handshake that never completes after the connection timeout", async () => {
    const openSockets: Array<net.Socket> = []
    const silent = net.createServer((socket) => void openSockets.push(socket))
    await new Promise<void>((done) => silent.listen(0, "127.0.0.1", done))
    const port = (silent.address() as net.AddressInfo).port
    try {
      const started = Date.now()
      const snapshot = await load(
        await sourceFor(`https://127.0.0.1:${port}`, { connectTimeoutMs: 300 }),
      )

      expect(Date.now() - started).toBeLessThan(5_000)
      expect(snapshot.warnings[0]!.message).toMatch(
        /the TLS handshake did not complete within 300 ms; there is no cached copy/,
      )
    } finally {
      await new Promise<void>((done) => {
        silent.close(() => done())
        for (const socket of openSockets) socket.destroy()
      })
    }
  })

  it("gives up on a response that stalls after the read timeout, using the copy", async () => {
    const started = Date.now()
    const { snapshot } = await afterGoodThen(
      { headers: { "Content-Type": "application/json" } },
      { readTimeoutMs: 300 },
    )

    expect(Date.now() - started).toBeLessThan(5_000)
    refusedWhole(snapshot, /the response did not arrive within 300 ms/)
  })
})
