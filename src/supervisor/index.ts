/** Running the listener under supervisord: config generation and control (see control.ts for the procedures). */
export {
  PROGRAM_NAME,
  readSupervisorConfig,
  supervisorPaths,
  writeSupervisorConfig,
  type SupervisedProgram,
  type SupervisorConfig,
  type SupervisorPaths,
} from "./config.js";
export {
  isListenerRunning,
  programStatus,
  restartListener,
  shutdownSupervisor,
  startListenerDaemon,
  stopListener,
  supervisorctl,
  type CtlResult,
  type ProgramState,
  type ProgramStatus,
  type StartResult,
} from "./control.js";
