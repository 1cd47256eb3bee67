/**
 * Config-source plugins given on the command line: `--source MODULE` or
 * `--source MODULE=ARGUMENT`, where MODULE is a package name or a path to a
 * built ES module that exports `makeConfigSource(context)` (core's
 * `ConfigSourcePlugin`). Plugin layers sit under the environment and over
 * spoc.conf, in the order given.
 *
 * A module that cannot be loaded, or does not export the function, is a
 * usage error naming the module and the fix; nothing else is loaded then.
 */
import { isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { ConfigSource } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import { UsageError } from "./Report.ts"

/** Splits `MODULE=ARGUMENT`; a Windows drive letter is not a separator. */
export const parseSourceSpec = (
  spec: string,
): { readonly module: string; readonly argument: string | undefined } => {
  const at = spec.indexOf("=")
  return at <= 0
    ? { module: spec, argument: undefined }
    : { module: spec.slice(0, at), argument: spec.slice(at + 1) }
}

const specifierOf = (module: string): string =>
  module.startsWith(".") || isAbsolute(module)
    ? pathToFileURL(resolve(process.cwd(), module)).href
    : module

/** Loads one plugin and makes its source. */
export const loadPlugin = (
  spec: string,
  context: Omit<ConfigSource.PluginContext, "argument">,
): Effect.Effect<ConfigSource.ConfigSource, UsageError> =>
  Effect.gen(function* () {
    const { module, argument } = parseSourceSpec(spec)
    const loaded = yield* Effect.tryPromise({
      try: () => import(specifierOf(module)) as Promise<Partial<ConfigSource.ConfigSourcePlugin>>,
      catch: (cause) =>
        new UsageError({
          detail: `the config-source plugin ${module} cannot be loaded (${
            (cause as Error).message?.split("\n")[0] ?? String(cause)
          })`,
          fix: "give an installed package name or the path of its built index.js",
        }),
    })
    if (typeof loaded.makeConfigSource !== "function") {
      return yield* new UsageError({
        detail: `${module} does not export makeConfigSource`,
        fix:
          "export `makeConfigSource(context)` returning a ConfigSource " +
          "(see docs/writing-a-config-source.md)",
      })
    }
    const make = loaded.makeConfigSource
    const source = yield* Effect.try({
      try: () => make({ ...context, argument }),
      catch: (cause) =>
        new UsageError({
          detail: `the config-source plugin ${module} failed while making its source: ${
            (cause as Error).message ?? String(cause)
          }`,
          fix: `check the argument given after "=" and the plugin's own documentation`,
        }),
    })
    if (!isConfigSource(source)) {
      return yield* new UsageError({
        detail: `${module}'s makeConfigSource did not return a ConfigSource`,
        fix: "return { layer: string, load: Effect } as core's ConfigSource describes",
      })
    }
    // A plugin that throws while loading is named, not reported as our own bug.
    return {
      layer: source.layer,
      load: source.load.pipe(
        Effect.catchDefect((defect) =>
          Effect.fail(
            new ConfigSource.ConfigSourceError({
              layer: source.layer,
              location: module,
              message: `the plugin ${module} failed: ${describeDefect(defect)}`,
              fix: "report it to the plugin's authors; a source must fail with ConfigSourceError",
            }),
          ),
        ),
      ),
    } satisfies ConfigSource.ConfigSource
  })

const describeDefect = (defect: unknown): string =>
  defect instanceof Error ? defect.message : String(defect)

const isConfigSource = (value: unknown): value is ConfigSource.ConfigSource =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as { layer?: unknown }).layer === "string" &&
  Effect.isEffect((value as { load?: unknown }).load)
