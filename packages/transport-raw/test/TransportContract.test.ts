// The contract every spoc-mail transport passes: field cases C01-C14 (testkit).
import { transportContract } from "@spoc-mail/testkit/contracts"
import { make, name } from "../src/RawTransport.ts"

transportContract(name, () => make())
