import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { inspect } from "node:util"
import { ConfigSource, Origin, SettingsResolution } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { TestClock } from "effect/testing"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as ResponseCache from "../src/internal/ResponseCache.ts"
import * as ManagementServerSource from "../src/ManagementServerSource.ts"
import {
  fixtureTrust,
  type Leaf,
  type ReferenceServer,
  startReference,
  systemTrust,
  temporaryFolder,
  valueOf,
} from "./support/Harness.ts"

let folder: ReturnType<typeof temporaryFolder>
let reference: ReferenceServer | undefined

beforeEach(() => {
  folder = temporaryFolder()
})

afterEach(async () => {
  await reference?.server.close()
  reference = undefined
  folder.remove()
})

const cacheDir = () => join(folder.path, "cache")

const start = async (options: { leaf?: Leaf; token?: string } = { leaf: "server" }) => {
  reference = await startReference({ folder: folder.path, ...options })
  return reference
}

const sourceFor = async (
  url: string,
  controllerId: string,
  extra: Partial<ManagementServerSource.ManagementServerSourceOptions> = {},
) =>
  ManagementServerSource.make({
    url,
    controllerId,
    trust: await fixtureTrust(),
    cacheDir: cacheDir(),
    ...extra,
  })

const load = (source: ConfigSource.ConfigSource) => Effect.runPromise(source.load)

const failure = async (source: ConfigSource.ConfigSource) => {
  const result = await Effect.runPromise(Effect.result(source.load))
  if (result._tag === "Success") throw new Error("the load succeeded")
  return result.failure
}

const served = (ref: ReferenceServer) => ref.events.filter((e) => e._tag === "Served")

describe("the Management Server source", () => {
  it("reads settings over verified HTTPS, as strings with origins", async () => {
    const { server } = await start()
    const source = await sourceFor(server.url, "spoc-hq-01")

    const snapshot = await load(source)

    expect(snapshot.layer).toBe("management-server")
    expect(snapshot.warnings).toEqual([])
    expect(valueOf(snapshot, "mailserver")).toBe("smtp.example.com")
    expect(valueOf(snapshot, "mailSmtpPort")).toBe("587")
    expect(valueOf(snapshot, "allowCustomCipherSuitesForOutboundCommunication")).toBe("false")
    const pass = snapshot.entries.find((e) => e.key === "mailpass")!
    expect(pass.value._tag === "Set" && Redacted.isRedacted(pass.value.value)).toBe(true)
    const backup = snapshot.entries.find((e) => e.key === "mailserverbackup")!
    expect(backup.value).toEqual({ _tag: "Inherit" })
    const revision = (
      JSON.parse(await httpsBody(server.mailSettingsUrl("spoc-hq-01"))) as {
        revision: string
      }
    ).revision
    expect(snapshot.entries[0]!.origin).toEqual({
      _tag: "Remote",
      url: server.mailSettingsUrl("spoc-hq-01"),
      revision,
    })
  })

  it("gets the group's overrides for a member controller", async () => {
    const { server } = await start()
    const source = await sourceFor(server.url, "spoc-brn01-a")

    const resolution = await Effect.runPromise(
      SettingsResolution.load([source], { exists: () => false }),
    )

    expect(resolution.problems).toEqual([])
    expect(resolution.settings?.mailserver.host).toBe("smtp-brn01.example.com")
    expect(resolution.settings?.mailserverbackup?.host).toBe("smtp-brn01-alt.example.com")
    expect(resolution.settings?.encryption).toBe("SSL_TLS")
    expect(resolution.settings?.port).toBe(465)
    const port = resolution.provenance.find((p) => p.key === "mailSmtpPort")!
    expect(port.layer).toBe("management-server")
    expect(Origin.format(port.origin)).toMatch(
      /^https:\/\/127\.0\.0\.1:\d+\/api\/v1\/controllers\/spoc-brn01-a\/mail-settings @ \w{16}$/,
    )
  })

  it("sends the cached ETag and uses the cached copy on 304, still as the server's", async () => {
    const ref = await start()
    const source = await sourceFor(ref.server.url, "spoc-brn01-a")

    const first = await load(source)
    const second = await load(source)

    expect(served(ref).map((e) => e._tag === "Served" && e.status)).toEqual([200, 304])
    expect(second.warnings).toEqual([])
    expect(second.entries).toEqual(first.entries)
    expect(second.entries[0]!.origin._tag).toBe("Remote")
  })

  it("uses the cached copy with its age when the server has stopped", async () => {
    const ref = await start()
    const source = await sourceFor(ref.server.url, "spoc-brn01-a")
    const fiveMinutesAgo = Date.now() - 5 * 60_000
    await Effect.runPromise(
      Effect.gen(function* () {
        yield* TestClock.setTime(fiveMinutesAgo)
        return yield* source.load
      }).pipe(Effect.provide(TestClock.layer())),
    )
    await ref.server.close()
    reference = undefined

    const snapshot = await load(source)

    expect(valueOf(snapshot, "mailserver")).toBe("smtp-brn01.example.com")
    const origin = snapshot.entries[0]!.origin
    expect(origin._tag).toBe("Cache")
    if (origin._tag !== "Cache") return
    expect(origin.ageMs).toBeGreaterThanOrEqual(5 * 60_000)
    expect(origin.ageMs).toBeLessThan(6 * 60_000)
    expect(origin.path.startsWith(cacheDir())).toBe(true)
    expect(Origin.format(origin)).toMatch(/^cache \(5 min\) of https:/)
    expect(snapshot.warnings).toHaveLength(1)
    expect(snapshot.warnings[0]!.message).toMatch(
      new RegExp(
        "could not be used: the server refused the connection; " +
          "using the cached copy of revision [0-9a-f]{16} from 5 min ago",
      ),
    )
  })

  it("is an empty layer with a warning when neither the server nor a copy is there", async () => {
    const ref = await start()
    const url = ref.server.url
    await ref.server.close()
    reference = undefined

    const snapshot = await load(await sourceFor(url, "spoc-brn01-a"))

    expect(snapshot.entries).toEqual([])
    expect(snapshot.warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(
        /refused the connection; there is no cached copy, so this layer is empty/,
      ),
    ])
  })

  it("writes the cache with mode 0600, atomically, in a 0700 folder", async () => {
    const { server } = await start()

    await load(await sourceFor(server.url, "spoc-brn01-a"))

    const files = readdirSync(cacheDir())
    expect(files).toEqual([expect.stringMatching(/^mail-settings-[0-9a-f]{32}\.json$/)])
    expect(statSync(join(cacheDir(), files[0]!)).mode & 0o777).toBe(0o600)
    expect(statSync(cacheDir()).mode & 0o777).toBe(0o700)
  })

  it("keeps one copy per URL and controller", async () => {
    const { server } = await start()

    await load(await sourceFor(server.url, "spoc-brn01-a"))
    await load(await sourceFor(server.url, "spoc-lab02"))
    await load(await sourceFor(`${server.url}/`, "spoc-lab02"))

    expect(readdirSync(cacheDir())).toHaveLength(2)
  })

  it("sends the bearer token and never shows it, nor keeps it in the cache", async () => {
    const token = "tok-9d1e6f0b2a"
    const { server } = await start({ leaf: "server", token })
    const right = await sourceFor(server.url, "spoc-brn01-a", { token: Redacted.make(token) })
    const wrong = await sourceFor(server.url, "spoc-lab02", {
      token: Redacted.make("tok-wrong-0000"),
    })

    const good = await load(right)
    const refused = await load(wrong)
    const badToken = await failure(
      await sourceFor(server.url, "spoc-brn01-a", { token: Redacted.make(`${token}\r\nX: y`) }),
    )

    expect(valueOf(good, "mailserver")).toBe("smtp-brn01.example.com")
    expect(refused.entries).toEqual([])
    expect(refused.warnings[0]!.message).toMatch(/refused the request \(401\)/)
    expect(badToken.message).toMatch(/bearer token is empty or holds spaces, line breaks/)
    const everything = [
      inspect(good, { depth: 10 }),
      JSON.stringify(good),
      inspect(refused, { depth: 10 }),
      JSON.stringify(refused),
      inspect(badToken, { depth: 10 }),
      String(badToken),
      inspect(right, { depth: 10 }),
      ...readdirSync(cacheDir()).map((f) => readFileSync(join(cacheDir(), f), "utf8")),
    ].join("\n")
    expect(everything).not.toContain(token)
    expect(everything).not.toContain("tok-wrong-0000")
  })

  it("uses the cached copy when the certificate is no longer trusted, saying why", async () => {
    const ref = await start({ leaf: "server" })
    await load(await sourceFor(ref.server.url, "spoc-brn01-a"))
    const untrusting = ManagementServerSource.make({
      url: ref.server.url,
      controllerId: "spoc-brn01-a",
      trust: systemTrust(),
      cacheDir: cacheDir(),
    })

    const snapshot = await load(untrusting)

    expect(valueOf(snapshot, "mailserver")).toBe("smtp-brn01.example.com")
    expect(snapshot.entries.every((e) => e.origin._tag === "Cache")).toBe(true)
    expect(snapshot.warnings).toHaveLength(1)
    const warning = snapshot.warnings[0]!
    expect(warning.message).toMatch(
      new RegExp(
        "^the Management Server cannot be trusted: .*not signed by a trusted CA.*; " +
          "using the cached copy of revision [0-9a-f]{16} from \\d+ s ago " +
          "until this is fixed; nothing was sent to it$",
      ),
    )
    expect(warning.fix).toMatch(/trust import/)
    expect(warning.origin?._tag).toBe("Cache")
    expect(served(ref)).toHaveLength(1)
  })

  it("fails with a trust error on an untrusted certificate when there is no copy", async () => {
    const ref = await start({ leaf: "server" })
    const untrusting = ManagementServerSource.make({
      url: ref.server.url,
      controllerId: "spoc-brn01-a",
      trust: systemTrust(),
      cacheDir: cacheDir(),
    })

    const error = await failure(untrusting)

    expect(error).toBeInstanceOf(ConfigSource.ConfigSourceError)
    expect(error.layer).toBe("management-server")
    expect(error.location).toBe(ref.server.mailSettingsUrl("spoc-brn01-a"))
    expect(error.message).toMatch(
      /cannot be trusted: .*not signed by a trusted CA.*; there is no cached copy to use instead$/,
    )
    expect(error.fix).toMatch(/trust import/)
    expect(served(ref)).toHaveLength(0)
  })

  const badCertificates = [
    ["wrong-host", /other\.test/, /a host name the certificate lists/],
    ["expired", /has expired/, /must renew its certificate/],
    ["self-signed", /DEPTH_ZERO_SELF_SIGNED_CERT/, /trust import/],
  ] as const

  it("fails with a trust error on a wrong-host, expired or self-signed certificate", async () => {
    for (const [leaf, reason, fix] of badCertificates) {
      const ref = await startReference({ folder: folder.path, leaf })
      try {
        const error = await failure(await sourceFor(ref.server.url, "spoc-brn01-a"))
        expect(error.message).toMatch(reason)
        expect(error.fix).toMatch(fix)
        expect(served(ref)).toHaveLength(0)
      } finally {
        await ref.server.close()
      }
    }
  })

  it("keeps sending on the cached copy when the certificate expires or is wrong", async () => {
    const threeHoursAgo = Date.now() - 3 * 3_600_000
    for (const [leaf, reason, fix] of badCertificates) {
      const ref = await startReference({ folder: folder.path, leaf })
      try {
        const url = ref.server.mailSettingsUrl("spoc-brn01-a")
        await Effect.runPromise(
          ResponseCache.write(
            cacheDir(),
            ResponseCache.cachePath(cacheDir(), url, "spoc-brn01-a"),
            {
              url,
              controllerId: "spoc-brn01-a",
              confirmedAt: threeHoursAgo,
              etag: '"c1"',
              response: {
                schemaVersion: 1,
                revision: "c1",
                settings: { mailserver: "smtp.c1.test" },
              },
            },
          ),
        )

        const snapshot = await load(await sourceFor(ref.server.url, "spoc-brn01-a"))

        expect(valueOf(snapshot, "mailserver")).toBe("smtp.c1.test")
        expect(Origin.format(snapshot.entries[0]!.origin)).toBe(`cache (3 h) of ${url} @ c1`)
        expect(snapshot.warnings).toHaveLength(1)
        expect(snapshot.warnings[0]!.message).toMatch(/^the Management Server cannot be trusted: /)
        expect(snapshot.warnings[0]!.message).toMatch(reason)
        expect(snapshot.warnings[0]!.message).toMatch(/copy of revision c1 from 3 h ago until/)
        expect(snapshot.warnings[0]!.fix).toMatch(fix)
        expect(served(ref)).toHaveLength(0)
      } finally {
        await ref.server.close()
      }
    }
  })

  it("keeps verifying when NODE_TLS_REJECT_UNAUTHORIZED=0 is set", async () => {
    const { server } = await start({ leaf: "server" })
    const before = process.env["NODE_TLS_REJECT_UNAUTHORIZED"]
    process.env["NODE_TLS_REJECT_UNAUTHORIZED"] = "0"
    try {
      const untrusting = ManagementServerSource.make({
        url: server.url,
        controllerId: "spoc-brn01-a",
        trust: systemTrust(),
        cacheDir: cacheDir(),
      })

      const error = await failure(untrusting)

      expect(error.message).toMatch(/cannot be trusted/)
    } finally {
      if (before === undefined) delete process.env["NODE_TLS_REJECT_UNAUTHORIZED"]
      else process.env["NODE_TLS_REJECT_UNAUTHORIZED"] = before
    }
  })

  it("reads plain HTTP from a loopback server", async () => {
    const { server } = await start({})

    const snapshot = await load(await sourceFor(server.url, "spoc-lab02"))

    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:/)
    expect(valueOf(snapshot, "mailserver")).toBe("smtp.example.com")
    expect(snapshot.entries.find((e) => e.key === "mailuser")!.value._tag).toBe("Inherit")
  })

  it("refuses plain HTTP to another machine before sending anything", async () => {
    const error = await failure(await sourceFor("http://192.0.2.10:8080", "spoc-brn01-a"))

    expect(error.message).toMatch(/plain HTTP to 192\.0\.2\.10 would send mailpass and the token/)
    expect(error.fix).toBe("use https://192.0.2.10:8080")
  })

  it("refuses URLs it cannot use, without showing a password they hold", async () => {
    const cases = [
      ["", /no Management Server URL/],
      ["ms.example.com", /URL is invalid/],
      ["ftp://ms.example.com", /ftp: is not supported/],
      ["https://admin:hunter2@ms.example.com", /holds a user name or password/],
      ["https://ms.example.com/?x=1", /query or fragment/],
    ] as const
    for (const [url, message] of cases) {
      const error = await failure(await sourceFor(url, "spoc-1"))
      expect(error.message).toMatch(message)
      expect(`${error.location} ${error.message} ${error.fix}`).not.toContain("hunter2")
    }
  })
})

/** The body of a GET verified with the fixture root. */
const httpsBody = async (url: string): Promise<string> => {
  const https = await import("node:https")
  const ca = (await fixtureTrust()).ca
  return new Promise((done, fail) => {
    https
      .get(url, { ca: [...ca], agent: false }, (res) => {
        let body = ""
        res.on("data", (chunk) => (body += chunk))
        res.on("end", () => done(body))
      })
      .on("error", fail)
  })
}
