/**
 * @spoc-mail/source-management-server: the Management Server config source.
 * `ManagementServerSource.make` reads a controller's mail settings over
 * verified HTTPS, checks the whole response, caches the last good one on disk
 * and falls back to it, with its age, when the server cannot be used.
 */
export * as MailSettingsResponse from "./MailSettingsResponse.ts"
export * as ManagementServerSource from "./ManagementServerSource.ts"
