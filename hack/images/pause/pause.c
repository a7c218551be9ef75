/*
 * The pod sandbox's process: it holds the pod's namespaces open and does nothing else.
 * Written here because no registry can be reached to pull a pause image.
 *
 * As PID 1 of the pod's PID namespace (when the pod shares one) it must reap orphans, and it
 * must exit promptly on the signals the runtime sends to stop the sandbox; everything else
 * is ignored.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	int saved = errno;
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {0};

	if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v') {
		puts("pgop-pause 1.0");
		return 0;
	}
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = stop;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return 1;
	sa.sa_handler = reap;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		return 2;
	if (getpid() != 1)
		fputs("pause: not running as PID 1, orphans are not mine to reap\n", stderr);
	for (;;)
		pause();
}
