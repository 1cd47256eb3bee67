import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startManagementServer } from "@spoc-mail/management-server"
import { fixturePath } from "@spoc-mail/testkit"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { runCli } from "./cli.ts"

let home: string
let closeServer: (() => Promise<void>) | undefined

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "spoc-layers-"))
})
afterEach(async () => {
  await closeServer?.()
  closeServer = undefined
  rmSync(home, { recursive: true, force: true })
})

const startCentral = async () => {
  const configPath = join(home, "central.yaml")
  copyFileSync(fixturePath("management-server/central.yaml"), configPath)
  const server = await startManagementServer({ configPath, watch: false })
  closeServer = server.close
  return server
}

const row = (stdout: string, key: string): string =>
  stdout.split("\n").find((line) => line.startsWith(`${key} `)) ?? ""

describe("spoc-mail config over every layer", () => {
  it("takes env over spoc.conf over the Management Server over defaults", async () => {
    const server = await startCentral()
    const args = [
      "config",
      "--spoc-home",
      home,
      "--management-server",
      server.url,
      "--controller-id",
      "spoc-lab02",
      "--spoc-conf",
      fixturePath("spoc-conf/02-empty-and-EMPTY.spoc.conf"),
    ]

    const result = await runCli(args, { SPOC_MAIL_SMTP_TIMEOUT: "7000" })

    expect(result.stdout).toMatch(/env > spoc\.conf > management-server > default/)
    expect(row(result.stdout, "mailSmtpTimeout")).toMatch(
      /7000\s+env \(SPOC_MAIL_SMTP_TIMEOUT\)\s+shadows management-server: 10000; default: 10000/,
    )
    expect(row(result.stdout, "mailserver")).toMatch(
      new RegExp(
        "relay-lab02\\.example\\.com\\s+spoc\\.conf \\(02-empty-and-EMPTY\\.spoc\\.conf:\\d+\\)" +
          "\\s+shadows management-server: smtp\\.example\\.com",
      ),
    )
    expect(row(result.stdout, "mailuser")).toMatch(/\(empty: \[EMPTY\]\)\s+spoc\.conf/)
    expect(row(result.stdout, "mailSmtpPort")).toMatch(
      /25\s+spoc\.conf .*shadows management-server: 587/,
    )
    expect(row(result.stdout, "cryptographicProtocolsForOutboundCommunication")).toMatch(
      new RegExp(`TLSv1\\.2\\s+management-server \\(${server.url.replace(/[.:/]/g, "\\$&")}.* @ `),
    )
    expect(result.stdout + result.stderr).not.toContain("central-secret")
  })

  it("uses the cached copy, with its age, when the Management Server is down", async () => {
    const server = await startCentral()
    const args = [
      "config",
      "--no-env",
      "--spoc-home",
      home,
      "--management-server",
      server.url,
      "--controller-id",
      "spoc-brn01-a",
    ]
    const first = await runCli(args)
    expect(row(first.stdout, "mailSmtpPort")).toMatch(/465\s+management-server \(http/)

    await closeServer!()
    closeServer = undefined
    const second = await runCli(args)

    expect(row(second.stdout, "mailSmtpPort")).toMatch(/465\s+management-server \(cache \(\d+ s\)/)
    expect(second.stdout).toMatch(/Warnings:[\s\S]*cached copy/)
    expect(second.stdout + second.stderr).not.toContain("central-secret")
  })
})
