import { mkdtempSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { configSourceContract } from "@spoc-mail/testkit/contracts"
import * as ManagementServerSource from "../src/ManagementServerSource.ts"
import {
  centralWith,
  fixtureTrust,
  type ReferenceServer,
  startReference,
  systemTrust,
  temporaryFolder,
} from "./support/Harness.ts"

// The store is the reference server's central file over verified HTTPS: each
// `make` writes the settings as its global settings and reloads it.
const folder = temporaryFolder()
let reference: ReferenceServer | undefined

const referenceServer = async (): Promise<ReferenceServer> => {
  reference ??= await startReference({ folder: folder.path, leaf: "server" })
  return reference
}

configSourceContract("management-server", {
  make: async (settings) => {
    const ref = await referenceServer()
    writeFileSync(ref.configPath, centralWith(settings))
    const reloaded = await ref.server.reload()
    if (reloaded._tag === "Failed") throw reloaded.error
    return ManagementServerSource.make({
      url: ref.server.url,
      controllerId: "spoc-contract",
      trust: await fixtureTrust(),
      cacheDir: join(folder.path, "cache"),
    })
  },
  // Unreachable servers fall back to the cache or an empty layer (DESIGN), and so
  // does a certificate that fails verification when a cached copy exists. What
  // cannot be read at all is that server with no copy: the same reference server,
  // not trusted, and a cache folder of its own that nothing ever wrote to.
  makeUnreadable: async () =>
    ManagementServerSource.make({
      url: (await referenceServer()).server.url,
      controllerId: "spoc-contract",
      trust: systemTrust(),
      cacheDir: mkdtempSync(join(folder.path, "no-cache-")),
    }),
  cleanup: async () => {
    await reference?.server.close()
    folder.remove()
  },
})
