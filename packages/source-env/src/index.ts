/**
 * @spoc-mail/source-env: the environment config source. `SPOC_` variables
 * (and `_FILE` twins for container secrets) make one layer named `env`.
 */
export * as EnvSource from "./EnvSource.ts"
