// Prints every setting and where it comes from: the environment over a JSON file over defaults.
// Usage, after `npm run build`: node scripts/show-settings.mjs settings.json
import { Origin, SettingsResolution } from "@spoc-mail/core"
import { JsonFileSource } from "@spoc-mail/example-json-file-source"
import { EnvSource } from "@spoc-mail/source-env"
import { Effect } from "effect"

const json = JsonFileSource.make({ path: process.argv[2] ?? "settings.json" })
const load = SettingsResolution.load([EnvSource.make(), json])
// A ConfigSourceError means a store could not be read: say which one and how to fix it.
const resolution = await Effect.runPromise(load).catch((error) => {
  console.error(`${error.message}. Fix: ${error.fix}`)
  process.exit(1)
})
const show = (v) =>
  v._tag === "Text" ? v.text : v._tag === "Secret" ? (v.set ? "(set)" : "(not set)") : "(empty)"
for (const p of resolution.provenance) {
  console.log(`${p.key} = ${show(p.value)}    from ${Origin.format(p.origin)}`)
}
for (const w of resolution.warnings) console.log(`warning: ${w.message}; ${w.fix ?? ""}`)
for (const p of resolution.problems) console.log(`problem: ${SettingsResolution.formatProblem(p)}`)
