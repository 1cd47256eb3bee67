import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parse as parseYaml } from "yaml"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import {
  type ManagementServerEvent,
  ManagementServerError,
  type ManagementServerOptions,
  type RunningManagementServer,
  startManagementServer,
} from "../src/ManagementServer.ts"

const fixtures = fileURLToPath(new URL("../../../packages/testkit/fixtures/", import.meta.url))
const pki = (name: string): string => readFileSync(join(fixtures, "pki", name), "utf8")
const centralFixture = join(fixtures, "management-server", "central.yaml")

interface Answer {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

/** A GET that verifies the server's certificate against the test root only. */
const get = (url: string, headers: Record<string, string> = {}): Promise<Answer> =>
  new Promise((done, fail) => {
    const request = (url.startsWith("https:") ? https : http).get(
      url,
      { headers, ca: [pki("root-ca.crt")], agent: false },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          done({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        )
      },
    )
    request.on("error", fail)
  })

let folder: string
let configPath: string
let server: RunningManagementServer | undefined
let events: Array<ManagementServerEvent>

const start = async (options: Partial<ManagementServerOptions> = {}) => {
  server = await startManagementServer({
    configPath,
    watch: false,
    onEvent: (event) => events.push(event),
    ...options,
  })
  return server
}

/** Resolves with the first event of that tag, or fails after a generous wait. */
const nextEvent = <T extends ManagementServerEvent["_tag"]>(tag: T, from = events.length) =>
  new Promise<Extract<ManagementServerEvent, { _tag: T }>>((done, fail) => {
    const deadline = Date.now() + 10_000
    const poll = (): void => {
      const found = events.slice(from).find((e) => e._tag === tag)
      if (found !== undefined) return done(found as Extract<ManagementServerEvent, { _tag: T }>)
      if (Date.now() > deadline) return fail(new Error(`no ${tag} event`))
      setTimeout(poll, 20)
    }
    poll()
  })

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), "spoc-ms-"))
  configPath = join(folder, "central.yaml")
  writeFileSync(configPath, readFileSync(centralFixture))
  events = []
})

afterEach(async () => {
  await server?.close()
  server = undefined
  rmSync(folder, { recursive: true, force: true })
})

describe("the reference Management Server", () => {
  it("serves a controller its settings as JSON with a revision and an ETag", async () => {
    const running = await start()

    const answer = await get(running.mailSettingsUrl("spoc-brn01-a"))

    expect(answer.status).toBe(200)
    expect(answer.headers["content-type"]).toBe("application/json; charset=utf-8")
    const document = JSON.parse(answer.body)
    expect(Object.keys(document)).toEqual(["schemaVersion", "revision", "settings"])
    expect(document.schemaVersion).toBe(1)
    expect(document.revision).toMatch(/^[0-9a-f]{16}$/)
    expect(answer.headers.etag).toBe(`W/"${document.revision}"`)
    expect(document.settings.mailserver).toBe("smtp-brn01.example.com")
    expect(document.settings.mailSmtpPort).toBe(465)
    expect(answer.headers["cache-control"]).toBe("no-store")
  })

  it("answers in YAML when the client prefers it", async () => {
    const running = await start()

    const answer = await get(running.mailSettingsUrl("spoc-lab02"), {
      Accept: "application/json;q=0.5, application/yaml",
    })

    expect(answer.status).toBe(200)
    expect(answer.headers["content-type"]).toBe("application/yaml; charset=utf-8")
    const document = parseYaml(answer.body)
    expect(document.settings.mailuser).toBe("")
    expect(document.settings.mailSmtpPort).toBe(587)
  })

  it("answers 406 when the client accepts neither JSON nor YAML", async () => {
    const running = await start()

    const answer = await get(running.mailSettingsUrl("spoc-lab02"), { Accept: "text/html" })

    expect(answer.status).toBe(406)
  })

  it("answers 304 to a current If-None-Match, and 200 after a change", async () => {
    const running = await start()
    const url = running.mailSettingsUrl("spoc-brn01-a")
    const first = await get(url)

    const unchanged = await get(url, { "If-None-Match": first.headers.etag! })
    writeFileSync(
      configPath,
      readFileSync(configPath, "utf8").replace("mailSmtpPort: 465", "mailSmtpPort: 2465"),
    )
    await running.reload()
    const changed = await get(url, { "If-None-Match": first.headers.etag! })

    expect(unchanged.status).toBe(304)
    expect(unchanged.body).toBe("")
    expect(changed.status).toBe(200)
    expect(JSON.parse(changed.body).settings.mailSmtpPort).toBe(2465)
    expect(changed.headers.etag).not.toBe(first.headers.etag)
  })

  it("gives an unknown controller the global settings", async () => {
    const running = await start()

    const answer = await get(running.mailSettingsUrl("spoc-new-99"))

    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body).settings.mailserver).toBe("smtp.example.com")
  })

  it("refuses malformed controller ids, other paths and other methods", async () => {
    const running = await start()

    const badId = await get(`${running.url}/api/v1/controllers/a%0Ab/mail-settings`)
    const otherPath = await get(`${running.url}/api/v1/controllers`)
    const post = await new Promise<number>((done, fail) => {
      const request = http.request(running.mailSettingsUrl("x"), { method: "POST" }, (res) => {
        res.resume()
        done(res.statusCode ?? 0)
      })
      request.on("error", fail)
      request.end()
    })

    expect(badId.status).toBe(400)
    expect(otherPath.status).toBe(404)
    expect(post).toBe(405)
  })

  it("requires the bearer token when it has one, and never reports the token", async () => {
    const token = "ms-token-5f3a9c"
    const running = await start({ token })
    const url = running.mailSettingsUrl("spoc-brn01-a")

    const missing = await get(url)
    const wrong = await get(url, { Authorization: "Bearer not-the-token" })
    const right = await get(url, { Authorization: `Bearer ${token}` })

    expect(missing.status).toBe(401)
    expect(missing.headers["www-authenticate"]).toMatch(/^Bearer/)
    expect(wrong.status).toBe(401)
    expect(right.status).toBe(200)
    expect(JSON.stringify(events)).not.toContain(token)
    expect(missing.body + wrong.body).not.toContain(token)
  })

  it("serves HTTPS with the given certificate, verified against the test root", async () => {
    const running = await start({
      tls: { cert: pki("server.chain.crt"), key: pki("server.key") },
    })

    const answer = await get(running.mailSettingsUrl("spoc-brn01-a"))

    expect(running.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(answer.status).toBe(200)
  })

  it("refuses to serve plain HTTP on an address other than loopback", async () => {
    const attempt = start({ host: "0.0.0.0" })

    await expect(attempt).rejects.toBeInstanceOf(ManagementServerError)
    await expect(attempt).rejects.toThrow(/refusing to serve plain HTTP on 0\.0\.0\.0.*--cert/)
  })

  it("refuses to start on a broken file, naming the line", async () => {
    writeFileSync(configPath, "schemaVersion: 1\nsettings:\n  mailserver: [a, b]\n")

    await expect(start()).rejects.toThrow(/central\.yaml:3: the value of mailserver is a list/)
  })

  it("reloads the file when it changes", async () => {
    const running = await start({ watch: true })
    const before = running.revision()
    const from = events.length

    const text = readFileSync(configPath, "utf8")
    writeFileSync(configPath, text.replace("smtp.example.com", "smtp2.example.com"))
    const reloaded = await nextEvent("Reloaded", from)
    const answer = await get(running.mailSettingsUrl("spoc-hq-01"))

    expect(reloaded.previous).toBe(before)
    expect(JSON.parse(answer.body).settings.mailserver).toBe("smtp2.example.com")
  })

  it("follows a file replaced by renaming, as editors save it", async () => {
    const running = await start({ watch: true })
    const from = events.length

    const draft = join(folder, "central.yaml.tmp")
    writeFileSync(
      draft,
      readFileSync(configPath, "utf8").replace("mailSmtpPort: 587", "mailSmtpPort: 25"),
    )
    renameSync(draft, configPath)
    await nextEvent("Reloaded", from)
    const answer = await get(running.mailSettingsUrl("spoc-hq-01"))

    expect(JSON.parse(answer.body).settings.mailSmtpPort).toBe(25)
  })

  it("keeps serving the last good file when the new one is broken, and says so", async () => {
    const running = await start({ watch: true })
    const good = running.revision()
    const from = events.length

    writeFileSync(configPath, "schemaVersion: 1\nsettings:\n  mailserver: 'unterminated\n")
    const failed = await nextEvent("ReloadFailed", from)
    const answer = await get(running.mailSettingsUrl("spoc-brn01-a"))

    expect(failed.serving).toBe(good)
    expect(failed.error.message).toMatch(/central\.yaml:\d+: the YAML cannot be read/)
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body).settings.mailserver).toBe("smtp-brn01.example.com")
    expect(running.revision()).toBe(good)
  })
})
