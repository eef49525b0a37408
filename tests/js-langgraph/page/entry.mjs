// What the browser test's page imports: the client, bundled by esbuild into client.js.
export { Client } from "@langchain/langgraph-sdk";
