// softroce/gateway: the WebSocket-to-UDP gateway (built with a later issue).
export const GATEWAY_PLACEHOLDER = true;
