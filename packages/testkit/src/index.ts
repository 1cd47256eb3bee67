/**
 * @spoc-mail/testkit: test parts for spoc-mail and its plugins.
 */
export * from "./Fixtures.ts"
export * from "./SmtpTestServer.ts"
