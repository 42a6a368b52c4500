/* daemon.h - the `vvd serve` command. */
#ifndef VV_DAEMON_H
#define VV_DAEMON_H

/* Runs the daemon until SIGINT/SIGTERM; returns the exit status. */
int vvd_serve(int argc, char **argv);

#endif
