// One build for every package: ESM for Node 20 and newer, with type declarations and source
// maps. A package's tsup.config.ts names only its entry points.
import { defineConfig, type Options } from "tsup"

export const library = (entry: ReadonlyArray<string> = ["src/index.ts"], extra: Options = {}) =>
  defineConfig({
    entry: [...entry],
    format: ["esm"],
    target: "node20",
    dts: true,
    sourcemap: true,
    clean: true,
    ...extra,
  })
