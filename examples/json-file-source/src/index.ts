/**
 * @spoc-mail/example-json-file-source: an example config source that reads
 * settings from a JSON file. docs/writing-a-config-source.md builds it.
 *
 * `makeConfigSource` makes it a plugin the `spoc-mail` command can load:
 * `spoc-mail config --source @spoc-mail/example-json-file-source=settings.json`.
 */
import { join } from "node:path"
import type { ConfigSource } from "@spoc-mail/core"
import * as JsonFileSource from "./JsonFileSource.ts"

export { JsonFileSource }

/** The plugin entry: the file given after `=`, else `<spoc home>/conf/settings.json`. */
export const makeConfigSource = (context: ConfigSource.PluginContext): ConfigSource.ConfigSource =>
  JsonFileSource.make({ path: context.argument ?? join(context.spocHome, "conf", "settings.json") })
