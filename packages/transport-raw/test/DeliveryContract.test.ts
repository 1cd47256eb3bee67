// The delivery policy through core's Mailer: every row of the failover table, secret search on.
import { deliveryContract } from "@spoc-mail/testkit/contracts"
import { make, name } from "../src/RawTransport.ts"

deliveryContract(name, () => make())
