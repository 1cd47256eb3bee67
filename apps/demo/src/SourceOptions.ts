/**
 * The options every settings-reading command shares (`send`, `config`,
 * `probe`, `trust`): where the controller lives and which layers to stack.
 * Defaults follow the controller: `<spoc home>/conf/modules/spoc.conf`, the
 * Management Server from `SPOC_MANAGEMENT_SERVER`, the controller id from
 * `SPOC_CONTROLLER_ID` or the host name.
 */
import { Flag } from "effect/cli"
import type * as Option from "effect/Option"

export interface SourceOptions {
  readonly spocHome: Option.Option<string>
  readonly spocConf: Option.Option<string>
  readonly managementServer: Option.Option<string>
  readonly controllerId: Option.Option<string>
  readonly noEnv: boolean
  /** Config-source plugins, `MODULE` or `MODULE=ARGUMENT`, under env and over spoc.conf. */
  readonly source: ReadonlyArray<string>
}

export const sourceFlags = {
  spocHome: Flag.String("spoc-home").pipe(
    Flag.withDescription("the controller's installation folder (default: SPOC_HOME, else .)"),
    Flag.optional,
  ),
  spocConf: Flag.String("spoc-conf").pipe(
    Flag.withDescription("spoc.conf to read (default: <spoc home>/conf/modules/spoc.conf)"),
    Flag.optional,
  ),
  managementServer: Flag.String("management-server").pipe(
    Flag.withDescription("Management Server URL (default: SPOC_MANAGEMENT_SERVER)"),
    Flag.optional,
  ),
  controllerId: Flag.String("controller-id").pipe(
    Flag.withDescription("this controller's id at the Management Server (default: host name)"),
    Flag.optional,
  ),
  source: Flag.String("source").pipe(
    Flag.withDescription(
      "add a config-source plugin: MODULE or MODULE=ARGUMENT (repeatable; under env, " +
        "over spoc.conf)",
    ),
    Flag.atLeast(0),
  ),
  noEnv: Flag.Boolean("no-env").pipe(
    Flag.withDescription(
      "leave out the environment layer (SPOC_* settings); SPOC_HOME, SPOC_MANAGEMENT_* " +
        "and SPOC_CONTROLLER_ID still locate the sources",
    ),
    Flag.withDefault(false),
  ),
} as const
