/**
 * @spoc-mail/transport-raw: spoc-mail's own SMTP client on node:net and
 * node:tls, as core's `Transport` service (`RawTransport.layer`).
 */
export * as Probe from "./Probe.ts"
export * as RawTransport from "./RawTransport.ts"
