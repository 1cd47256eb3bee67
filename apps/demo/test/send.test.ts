import { writeFileSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { describe, expect, it } from "vitest"
import { runCli } from "./cli.ts"
import { password, secretsIn, useWorkspace } from "./workspace.ts"

const { path, start, writeConf } = useWorkspace("send", {
  mailfrom: "Print Room <print@example.com>",
})

describe("spoc-mail send", () => {
  for (const transport of ["raw", "nodemailer"]) {
    it(`delivers over STARTTLS with AUTH and an attachment (${transport})`, async () => {
      const server = await start({
        tls: "starttls",
        certificate: "server",
        auth: { user: "svc", password },
      })
      const conf = writeConf({
        mailserver: "localhost",
        mailSmtpPort: server.port,
        mailSmtpEncryption: "STARTTLS_REQUIRED",
        mailuser: "svc",
        mailpass: password,
      })
      const attachment = path("scan.txt")
      writeFileSync(attachment, "scanned page\n")

      const result = await runCli([
        "send",
        "--no-env",
        "--spoc-conf",
        conf,
        "--transport",
        transport,
        "--to",
        "ops@example.com",
        "--subject",
        "Scan",
        "--text",
        "Attached.",
        "--attach",
        attachment,
        "--log-level",
        "debug",
      ])

      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(
        new RegExp(
          `delivered by the primary server localhost:${server.port} via ${transport}, ` +
            "STARTTLS TLSv1\\.[23] \\S+: 250",
        ),
      )
      expect(server.messages).toHaveLength(1)
      const raw = server.messages[0]!.raw.toString()
      expect(raw).toContain("filename=scan.txt")
      expect(server.messages[0]!.user).toBe("svc")
      expect(secretsIn(result.stdout + result.stderr)).toEqual([])
    })
  }

  it("sends an .eml file with its blind copies kept blind", async () => {
    const server = await start({ tls: "none" })
    const conf = writeConf({ mailserver: "127.0.0.1", mailSmtpPort: server.port })
    const eml = path("note.eml")
    writeFileSync(
      eml,
      "From: print@example.com\r\nTo: a@example.com\r\nBcc: hidden@example.com\r\n" +
        "Subject: note\r\n\r\nhello\r\n",
    )

    const result = await runCli(["send", "--no-env", "--spoc-conf", conf, "--eml", eml])

    expect(result.code).toBe(0)
    expect(server.messages[0]!.envelope.to).toEqual(["a@example.com", "hidden@example.com"])
    expect(server.messages[0]!.raw.toString()).not.toMatch(/bcc/i)
  })

  it("exits 4 and names the server when the connection is refused", async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe: Server = createServer().listen(0, "127.0.0.1", () => {
        const port = (probe.address() as { port: number }).port
        probe.close(() => resolve(port))
      })
    })
    const conf = writeConf({ mailserver: "127.0.0.1", mailSmtpPort: closed })

    const result = await runCli([
      "send",
      "--no-env",
      "--spoc-conf",
      conf,
      "--to",
      "a@example.com",
      "--text",
      "x",
    ])

    expect(result.code).toBe(4)
    expect(result.stderr).toContain(`127.0.0.1:${closed}`)
    expect(result.stderr).toMatch(/How to fix:/)
  })

  it("prints each settings warning with its file, line and fix", async () => {
    const server = await start({ tls: "none" })
    const conf = writeConf({
      mailserver: "127.0.0.1",
      mailSmtpPort: server.port,
      mailSmtpEncription: "STARTTLS",
    })

    const result = await runCli(["send", "--no-env", "--spoc-conf", conf, "--to", "a@b.example"])

    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(
      /unknown key "mailSmtpEncription".*\(.*spoc\.conf:\d+\)\. Fix: .*mailSmtpEncryption/,
    )
  })

  for (const transport of ["raw", "nodemailer"]) {
    it(`exits 10 for a message over the server's SIZE limit (${transport})`, async () => {
      const server = await start({ tls: "none", size: 1000 })
      const conf = writeConf({ mailserver: "127.0.0.1", mailSmtpPort: server.port })

      const result = await runCli([
        "send",
        "--no-env",
        "--spoc-conf",
        conf,
        "--transport",
        transport,
        "--to",
        "a@example.com",
        "--text",
        "x".repeat(5000),
      ])

      expect(result.stderr).toContain("MessageTooLarge")
      expect(result.code).toBe(10)
      expect(server.messages).toEqual([])
    })
  }

  it("exits 6 with the STARTTLS hint when SSL_TLS meets a plain-text greeting", async () => {
    const server = await start({ tls: "none" })
    const conf = writeConf({
      mailserver: "127.0.0.1",
      mailSmtpPort: server.port,
      mailSmtpEncryption: "SSL_TLS",
      mailSmtpConnectionTimeout: 10000,
    })

    const result = await runCli([
      "send",
      "--no-env",
      "--spoc-conf",
      conf,
      "--to",
      "a@example.com",
      "--text",
      "x",
    ])

    expect(result.code).toBe(6)
    expect(result.stderr).toMatch(/STARTTLS/)
  })

  it("exits 3 naming the key when mailserver is missing", async () => {
    const conf = writeConf({ mailSmtpPort: 25 })

    const result = await runCli([
      "send",
      "--no-env",
      "--spoc-conf",
      conf,
      "--to",
      "a@example.com",
      "--text",
      "x",
    ])

    expect(result.code).toBe(3)
    expect(result.stderr).toMatch(/mailserver: is not set/)
  })

  it("exits 12 naming the trust store when it cannot be read", async () => {
    const store = path("broken.pem")
    writeFileSync(store, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n")
    const conf = writeConf({ mailserver: "127.0.0.1", trustStorePath: store })

    const result = await runCli([
      "send",
      "--no-env",
      "--spoc-conf",
      conf,
      "--to",
      "a@example.com",
      "--text",
      "x",
    ])

    expect(result.code).toBe(12)
    expect(result.stderr).toContain(store)
  })

  it("shows help for every subcommand", async () => {
    for (const command of [[], ["demo"], ["send"], ["config"]]) {
      const result = await runCli([...command, "--help"])
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/USAGE/)
    }
  })
})
