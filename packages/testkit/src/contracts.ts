/**
 * @spoc-mail/testkit/contracts: the suites every plugin runs under vitest.
 * `configSourceContract` holds a ConfigSource to the rules of the contract;
 * `transportContract` runs every server case of CASES.md against a
 * Transport; `deliveryContract` runs every row of the failover table through
 * core's Mailer with that Transport. Kept apart from the servers so that
 * programs using the servers (the demo) do not load vitest.
 */
export * from "./ConfigSourceContract.ts"
export {
  contractReasons,
  transportContract,
  type TransportContractOptions,
} from "./TransportContract.ts"
export { deliveryContract, type DeliveryContractOptions } from "./DeliveryContract.ts"
