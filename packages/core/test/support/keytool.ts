/**
 * keytool, to check that stores we write are read by Java's own tool. The
 * tests need it: when it is missing they fail and say to install a JRE
 * (`default-jre-headless` on Debian and Ubuntu), they never skip.
 */
import { execFileSync } from "node:child_process"

const find = (): string => {
  try {
    return execFileSync("sh", ["-c", "command -v keytool"], { encoding: "utf8" }).trim()
  } catch {
    throw new Error(
      "keytool is not installed: these tests check our JKS and PKCS#12 files with Java's " +
        "keytool. Install a JRE (apt-get install default-jre-headless) and run them again.",
    )
  }
}

export interface KeytoolEntry {
  readonly alias: string
  readonly type: string
  readonly fingerprint256: string
}

/** `keytool -list` of a store, parsed: its type and entries. */
export const keytoolList = (
  path: string,
  password = "changeit",
): { readonly storeType: string; readonly entries: ReadonlyArray<KeytoolEntry> } => {
  const english = ["-J-Duser.language=en", "-J-Duser.country=US"]
  const output = execFileSync(
    find(),
    [...english, "-list", "-keystore", path, "-storepass", password],
    { encoding: "utf8", timeout: 60_000 },
  )
  const storeType = /Keystore type: (\S+)/.exec(output)?.[1] ?? "unknown"
  const entries: Array<KeytoolEntry> = []
  const lines = output.split("\n")
  lines.forEach((line, i) => {
    const entry = /^(.+?), [^,]+, (\d+, )?(trustedCertEntry|PrivateKeyEntry),\s*$/.exec(line)
    if (entry === null) return
    const fingerprint = /SHA-256\): (\S+)/.exec(lines[i + 1] ?? "")?.[1] ?? ""
    entries.push({ alias: entry[1]!, type: entry[3]!, fingerprint256: fingerprint })
  })
  return { storeType, entries }
}
