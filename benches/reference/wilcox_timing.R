#!/usr/bin/env Rscript
## Reference timing of R's wilcox.test for the canary-judge benchmark.
## Usage (from the repository root):
##   Rscript benches/reference/wilcox_timing.R [N] [once]
##     N in {50, 1000, 10000}; default 10000.
##     "once": parse + a single wilcox.test call + print result (for timing the whole
##     process with /usr/bin/time); otherwise the in-process timing below is run.
## Reads benches/data/judge-N.json ({"canary": [...], "baseline": [...], "confidence": c})
## with a minimal hand parser (no packages), then times, in-process, 5 repetitions of
##   wilcox.test(canary, baseline, conf.int = TRUE, conf.level = 0.95,
##               exact = FALSE, correct = TRUE)
## with system.time(). Because system.time() has ~1 ms resolution, it also reports a
## batched mean (the same call repeated until >= 2 s of elapsed time has accumulated).

args <- commandArgs(trailingOnly = TRUE)
n_arg <- if (length(args) >= 1) args[1] else "10000"
path <- file.path("benches", "data", sprintf("judge-%s.json", n_arg))

t_parse <- system.time({
  txt <- paste(readLines(path, warn = FALSE), collapse = "")
  field <- function(name) {
    m <- regmatches(txt, regexec(sprintf("\"%s\"\\s*:\\s*\\[([^]]*)\\]", name), txt))[[1]]
    as.numeric(strsplit(m[2], ",", fixed = TRUE)[[1]])
  }
  canary <- field("canary")
  baseline <- field("baseline")
  conf <- as.numeric(sub(".*\"confidence\"\\s*:\\s*([0-9.eE+-]+).*", "\\1", txt))
})

cat(sprintf("%s\nfile: %s  n_canary=%d n_baseline=%d confidence=%s  parse elapsed=%.3f s\n",
            R.version.string, path, length(canary), length(baseline), format(conf), t_parse[["elapsed"]]))

run <- function() wilcox.test(canary, baseline, conf.int = TRUE, conf.level = 0.95,
                              exact = FALSE, correct = TRUE)

print_result <- function(res)
  cat(sprintf("result: W=%.17g p=%.17g conf.int=[%.17g, %.17g] estimate=%.17g\n",
              unname(res$statistic), res$p.value, res$conf.int[1], res$conf.int[2],
              unname(res$estimate)))

if (length(args) >= 2 && args[2] == "once") {
  print_result(run())
  quit(save = "no", status = 0)
}

reps <- 5
el <- numeric(reps); us <- numeric(reps)
res <- NULL
for (i in seq_len(reps)) {
  tt <- system.time(res <- run())
  el[i] <- tt[["elapsed"]]; us[i] <- tt[["user.self"]] + tt[["sys.self"]]
  cat(sprintf("rep %d: elapsed=%.3f s  user+sys=%.3f s\n", i, el[i], us[i]))
}
cat(sprintf("median elapsed over %d reps: %.3f s (min %.3f, max %.3f)\n",
            reps, median(el), min(el), max(el)))

## batched mean for resolution
k <- 0L; t0 <- proc.time()[["elapsed"]]
repeat {
  invisible(run()); k <- k + 1L
  dt <- proc.time()[["elapsed"]] - t0
  if (dt >= 2 || k >= 100000L) break
}
cat(sprintf("batched: %d calls in %.3f s -> mean %.6f s per call\n", k, dt, dt / k))

print_result(res)
