/**
 * The `spoc-mail` command: `demo` (the default when no subcommand is given),
 * `send`, `config`, `probe` and `trust`. Each subcommand lives in
 * `commands/`; this file only assembles them and runs the result on Node.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import { CliError, Command } from "effect/cli"
import { configCommand } from "./commands/config.ts"
import { demoCommand, runDemo } from "./commands/demo.ts"
import { probeCommand } from "./commands/probe.ts"
import { sendCommand } from "./commands/send.ts"
import { trustCommand } from "./commands/trust.ts"
import { handled } from "./Cli.ts"
import { exitCodes } from "./ExitCodes.ts"

const version = "0.1.0"

export const spocMail = Command.make("spoc-mail", {}, () => handled(runDemo)).pipe(
  Command.withDescription(
    "Send mail from a print spooler controller: every encryption mode, no silent downgrade. " +
      "Without a subcommand, runs the demo.",
  ),
  Command.withSubcommands([demoCommand, sendCommand, configCommand, probeCommand, trustCommand]),
)

/** A command line that does not parse (unknown flag, bad value) is a usage error: exit 2. */
const usageExit = Effect.catchIf(CliError.isCliError, () =>
  Effect.sync(() => {
    process.exitCode = exitCodes.usage
  }),
)

Command.run(spocMail, { version }).pipe(
  usageExit,
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain,
)
