import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { CentralConfigError } from "../src/CentralConfig.ts"
import { formatEvent, parseCommand } from "../src/Command.ts"

const pki = fileURLToPath(new URL("../../../packages/testkit/fixtures/pki/", import.meta.url))

let folder: string
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), "spoc-ms-cli-"))
})
afterEach(() => rmSync(folder, { recursive: true, force: true }))

describe("the spoc-management-server command line", () => {
  it("serves HTTPS on 127.0.0.1:8443 from the documented command", () => {
    const invocation = parseCommand([
      "--config",
      "central.yaml",
      "--cert",
      join(pki, "server.chain.crt"),
      "--key",
      join(pki, "server.key"),
    ])

    expect(invocation._tag).toBe("Serve")
    if (invocation._tag !== "Serve") return
    expect(invocation.options).toMatchObject({ configPath: "central.yaml", port: 8443 })
    expect(invocation.options.host).toBeUndefined()
    expect(invocation.options.tls?.cert).toMatch(/BEGIN CERTIFICATE/)
  })

  it("reads the token from a file without its final newline", () => {
    const tokenFile = join(folder, "token")
    writeFileSync(tokenFile, "s3cret-token\n")

    const invocation = parseCommand(["--config", "c.yaml", "--token-file", tokenFile])

    expect(invocation._tag === "Serve" && invocation.options.token).toBe("s3cret-token")
  })

  it("explains wrong usage with exit code 2 and unreadable files with exit code 1", () => {
    expect(parseCommand([])).toMatchObject({ _tag: "Invalid", exitCode: 2 })
    expect(parseCommand(["--config", "c.yaml", "--cert", "a.crt"])).toMatchObject({
      message: "--cert and --key go together",
      exitCode: 2,
    })
    expect(parseCommand(["--config", "c.yaml", "--port", "70000"])).toMatchObject({
      exitCode: 2,
    })
    expect(parseCommand(["--config", "c.yaml", "--bogus"])).toMatchObject({ exitCode: 2 })
    expect(
      parseCommand(["--config", "c.yaml", "--token-file", join(folder, "missing")]),
    ).toMatchObject({ _tag: "Invalid", exitCode: 1, message: expect.stringMatching(/ENOENT/) })
  })

  it("logs a failed reload on stderr with the revision still served", () => {
    const error = new CentralConfigError("central.yaml", 3, "the value of x is a list", "fix it")

    const { line, error: onStderr } = formatEvent(
      { _tag: "ReloadFailed", error, serving: "0123456789abcdef" },
      new Date(0),
    )

    expect(onStderr).toBe(true)
    expect(line).toContain("central.yaml:3: the value of x is a list")
    expect(line).toContain("still serving the last good file, revision 0123456789abcdef")
  })

  it("logs a request with the controller, its groups and revision", () => {
    const { line } = formatEvent(
      {
        _tag: "Served",
        controllerId: "spoc-brn01-a",
        groups: ["Branch-BRN01"],
        revision: "0123456789abcdef",
        status: 200,
        format: "json",
      },
      new Date(0),
    )

    expect(line).toBe(
      "1970-01-01T00:00:00.000Z 200 spoc-brn01-a [Branch-BRN01] 0123456789abcdef json",
    )
  })
})
