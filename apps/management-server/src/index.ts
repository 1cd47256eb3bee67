/**
 * @spoc-mail/management-server: a small reference Management Server that
 * serves spooler controllers their mail settings from a central YAML file.
 * `startManagementServer` is what tests, the testkit and the demo use; the
 * `spoc-management-server` command wraps it.
 */
export {
  type CentralConfig,
  CentralConfigError,
  type ControllerSettings,
  controllerIdPattern,
  type Group,
  maxFileBytes,
  maxValueLength,
  parseCentralConfig,
  type SettingValue,
  type Settings,
  settingsFor,
} from "./CentralConfig.ts"
export {
  isLoopbackHost,
  type ManagementServerEvent,
  ManagementServerError,
  type ManagementServerOptions,
  type ReloadOutcome,
  type RunningManagementServer,
  startManagementServer,
} from "./ManagementServer.ts"
export {
  type Format,
  type MailSettingsDocument,
  negotiate,
  render,
} from "./internal/Representation.ts"
export { formatEvent, type Invocation, parseCommand, usage } from "./Command.ts"
