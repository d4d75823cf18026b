/** `atoll gateway` and `atoll agent`: how workloads use connections (spec section 5). */
export { runAgent, AgentFatalError, AgentErrorMessage, type AgentOptions } from './agent.js';
export { callerFromTokenReview, GATEWAY_AUDIENCE, parseServiceAccountUsername, type Caller } from './caller.js';
export { GatewayError, GatewayErrorCode, GatewayErrorMessage } from './errors.js';
export { startGateway, type Gateway, type GatewayOptions } from './server.js';
