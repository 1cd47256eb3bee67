import { describe, expect, it } from "vitest"
import { runCli } from "./cli.ts"

describe("spoc-mail demo", () => {
  it("delivers with SSL_TLS, STARTTLS and failover through both transports", async () => {
    const result = await runCli(["demo"])

    expect(result.code).toBe(0)
    const lines = result.stdout.split("\n").filter((l) => /^(SSL_TLS|STARTTLS|failover) /.test(l))
    expect(lines.map((l) => l.split(/\s+/).slice(0, 3).join(" "))).toEqual([
      "SSL_TLS raw primary",
      "SSL_TLS nodemailer primary",
      "STARTTLS raw primary",
      "STARTTLS nodemailer primary",
      "failover raw backup",
      "failover nodemailer backup",
    ])
    for (const line of lines) expect(line).toMatch(/TLSv1\.[23] TLS_\S+\s+250 /)
    expect(result.stdout).toMatch(/6 messages sent, 6 received/)
    expect(result.stderr).toMatch(/trying the backup 127\.0\.0\.2/)
  })

  it("is what runs when no subcommand is given", async () => {
    const result = await runCli([])

    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/6 messages sent, 6 received/)
  })
})
