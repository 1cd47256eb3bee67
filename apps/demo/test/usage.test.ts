import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { execFileSync } from "node:child_process"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type SmtpTestServer, startSmtpServer } from "@spoc-mail/testkit"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { runCli } from "./cli.ts"

let dir: string
let server: SmtpTestServer | undefined

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "spoc-usage-"))
})
afterEach(async () => {
  await server?.close()
  server = undefined
  rmSync(dir, { recursive: true, force: true })
})

const plainServerConf = async (extra = ""): Promise<string> => {
  server = await startSmtpServer({ tls: "none" })
  const conf = join(dir, "spoc.conf")
  writeFileSync(
    conf,
    `mailserver = 127.0.0.1\nmailSmtpPort = ${server.port}\n` +
      `mailfrom = Tiskové služby <tisk@example.cz>\n${extra}`,
  )
  return conf
}

describe("usage errors", () => {
  it("exit 2 for a command line that does not parse", async () => {
    for (const args of [
      ["send", "--bogus"],
      ["send", "--transport", "foo"],
      ["--log-level", "loud"],
      ["probe", "--port", "abc"],
      ["frobnicate"],
      ["config", "--json", "extra"],
    ]) {
      const result = await runCli(args)
      expect({ args, code: result.code }).toEqual({ args, code: 2 })
    }
  })

  it("refuse a recipient hiding a second address, before connecting", async () => {
    const conf = await plainServerConf()

    for (const to of ["ops@example.com\r\nRCPT TO:<evil@evil.test>", "a@example.com b@x.test"]) {
      const result = await runCli(["send", "--no-env", "--spoc-conf", conf, "--to", to])
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/to: /)
    }
    expect(server!.connectionCount).toBe(0)
  })

  it("refuse an attachment that is not a regular file, without reading it", async () => {
    const conf = await plainServerConf()
    const fifo = join(dir, "pipe")
    execFileSync("mkfifo", [fifo])
    mkdirSync(join(dir, "folder"))

    for (const path of ["/dev/zero", fifo, join(dir, "folder")]) {
      const result = await runCli(
        ["send", "--no-env", "--spoc-conf", conf, "--to", "a@example.com", "--attach", path],
        {},
        20_000,
      )
      expect(result.code).toBe(2)
      expect(result.stderr).toContain(`${path} is not a regular file`)
    }
  })

  it("refuse composing flags together with --eml", async () => {
    const conf = await plainServerConf()
    const eml = join(dir, "m.eml")
    writeFileSync(eml, "To: a@example.com\r\n\r\nhi\r\n")

    const result = await runCli([
      "send",
      "--no-env",
      "--spoc-conf",
      conf,
      "--eml",
      eml,
      "--subject",
      "x",
    ])

    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--subject cannot go with --eml/)
  })

  it("give an .eml file without From or Date the configured sender and a date", async () => {
    const conf = await plainServerConf()
    const eml = join(dir, "m.eml")
    writeFileSync(eml, "To: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n")

    const result = await runCli(["send", "--no-env", "--spoc-conf", conf, "--eml", eml])

    expect(result.code).toBe(0)
    const raw = server!.messages[0]!.raw.toString()
    expect(raw).toMatch(/^From: =\?UTF-8\?Q\?.+\?= <tisk@example\.cz>\r\n/m)
    expect(raw).toMatch(/^Date: /m)
    expect(server!.messages[0]!.envelope.from).toBe("tisk@example.cz")
  })

  it("refuse credentials when the encryption key is misspelt", async () => {
    const conf = await plainServerConf(
      "mailuser = svc\nmailpass = Secr3t-pw\nmailSmtpEncription = STARTTLS_REQUIRED\n",
    )

    const result = await runCli(["send", "--no-env", "--spoc-conf", conf, "--to", "a@example.com"])

    expect(result.code).toBe(3)
    expect(result.stderr).toMatch(/mailSmtpEncryption: credentials are set but no encryption mode/)
    expect(server!.connectionCount).toBe(0)
    expect(result.stderr).not.toContain("Secr3t-pw")
  })
})

describe("broken config-source plugins", () => {
  const plugin = (name: string, body: string): string => {
    const path = join(dir, `${name}.mjs`)
    writeFileSync(path, body)
    return path
  }

  it("are named, with exit 2, when they return something else or throw", async () => {
    const cases: Array<[string, RegExp]> = [
      [
        plugin("number", "export const makeConfigSource = () => 42\n"),
        /did not return a ConfigSource/,
      ],
      [
        plugin("throws", 'export const makeConfigSource = () => { throw new Error("kaboom") }\n'),
        /throws\.mjs failed while making its source: kaboom/,
      ],
      [plugin("none", "export const other = 1\n"), /does not export makeConfigSource/],
    ]
    for (const [path, message] of cases) {
      const result = await runCli(["config", "--no-env", "--source", path])
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(message)
    }
  })
})

describe("the controller's folder", () => {
  it("must exist when given", async () => {
    const result = await runCli(["config", "--no-env", "--spoc-home", join(dir, "missing")])

    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/spoc home .*missing is not a folder/)
  })
})

describe("config output", () => {
  it("escapes control characters; JSON says what kind of empty", async () => {
    const conf = join(dir, "spoc.conf")
    writeFileSync(conf, "mailserver = smtp.example.com\nmailuser = [EMPTY]\n")

    const text = await runCli(["config", "--spoc-conf", conf], {
      SPOC_MAILFROM: "a\rb@example.com",
    })
    const json = await runCli(["config", "--no-env", "--json", "--spoc-conf", conf])

    expect(text.stdout).toMatch(/^mailfrom\s+a\\rb@example\.com\s+env/m)
    const settings = JSON.parse(json.stdout).settings
    expect(settings.mailuser).toMatchObject({ value: "", forcedEmpty: true, layer: "spoc.conf" })
    expect(settings.mailfrom).toMatchObject({ value: null, layer: "default" })
    expect(settings.mailserver).toMatchObject({ value: "smtp.example.com" })
  })
})
