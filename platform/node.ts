// The Node platform: what the engine and backends need from Node, installed once on import.
//  - settings: GAPGRAD_* environment variables are read through engine/config.ts.
// Importing the package's Node entry (node.ts), the CLI, or the test setup installs it.
import { setEnvironmentSource } from '../engine/config.ts';

setEnvironmentSource((name) => process.env[name]);
