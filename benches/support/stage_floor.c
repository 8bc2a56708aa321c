/*
 * For scale in `--bench stage` (row 2d): the least a native stage can cost with hookhost's
 * process structure, in C. `stage_floor HOOK` starts a guard that shares its memory
 * (clone(CLONE_VM), as hookhost's) and leads a new process group, spawns HOOK into that group
 * with pipes for its stdin, stdout and stderr, writes a state to its stdin, drains its output,
 * waits for it, kills the group and reaps the guard. No plan to read, nothing recorded, no
 * checks: what is left of a native stage when all of hookhost's own work is taken away.
 * Built by the bench as a static program (musl-gcc, else cc).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static int line;

/* The guard: lead a group, close all but the line, block on it, kill the group at end of
 * file. */
static int guard(void *unused) {
    char byte;
    (void)unused;
    setpgid(0, 0);
    syscall(SYS_close_range, 0, line - 1, 0);
    syscall(SYS_close_range, line + 1, ~0U, 0);
    if (read(line, &byte, 1) != 1)
        kill(0, SIGKILL);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    int guard_line[2], in[2], out[2], err[2];
    if (pipe2(guard_line, O_CLOEXEC))
        return 3;
    line = guard_line[0];
    char *stack = mmap(0, 65536, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return 3;
    pid_t group = clone(guard, stack + 65536, CLONE_VM | SIGCHLD, 0);
    if (group < 0)
        return 3;
    setpgid(group, group);
    close(guard_line[0]);
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        return 3;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawnattr_t attrs;
    posix_spawnattr_init(&attrs);
    posix_spawnattr_setpgroup(&attrs, group);
    posix_spawnattr_setflags(&attrs, POSIX_SPAWN_SETPGROUP);
    pid_t hook;
    char *hook_argv[] = {argv[1], 0};
    if (posix_spawn(&hook, argv[1], &actions, &attrs, hook_argv, environ))
        return 3;
    close(in[0]);
    close(out[1]);
    close(err[1]);
    static const char state[] = "{\"ociVersion\":\"1.0.2\",\"id\":\"floor\",\"status\":\"creating\"}";
    write(in[1], state, sizeof state - 1);
    close(in[1]);
    char buf[4096];
    while (read(out[0], buf, sizeof buf) > 0)
        ;
    while (read(err[0], buf, sizeof buf) > 0)
        ;
    int status;
    waitpid(hook, &status, 0);
    kill(-group, SIGKILL);
    close(guard_line[1]);
    waitpid(group, 0, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
