// A tiny DataStream job the Flink source plugin's tests submit to a local
// cluster: a slow, checkpointed counter source, an unchained map (so records
// cross a network edge and Flink reports records/bytes in and out), and a
// discarding sink. Arguments (all optional):
//   --name JOB_NAME --source-name VERTEX_NAME --sleep-ms 20 --checkpoint-ms 500
//   --fail-after N   throw once the counter reaches N; the job then FAILS
//                    (no restarts), which produces an exception and a status change.
package iggytest;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.java.utils.ParameterTool;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.DiscardingSink;
import org.apache.flink.streaming.api.functions.source.SourceFunction;

public class IggyTestJob {
    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        long failAfter = params.getLong("fail-after", -1);
        Configuration conf = new Configuration();
        if (failAfter >= 0) {
            conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.enableCheckpointing(params.getLong("checkpoint-ms", 500));
        env.addSource(new Counter(params.getLong("sleep-ms", 20)))
                .name(params.get("source-name", "iggy-test-counter"))
                .disableChaining()
                .map(new FailAt(failAfter))
                .name("to-text")
                .addSink(new DiscardingSink<>())
                .name("discard");
        env.execute(params.get("name", "iggy-test-job"));
    }

    /** Counts up, one value per sleep; the count is checkpointed so a restore resumes it. */
    static class Counter implements SourceFunction<Long>, CheckpointedFunction {
        private final long sleepMs;
        private volatile boolean running = true;
        private long next;
        private transient ListState<Long> state;

        Counter(long sleepMs) {
            this.sleepMs = sleepMs;
        }

        @Override
        public void run(SourceContext<Long> ctx) throws Exception {
            while (running) {
                synchronized (ctx.getCheckpointLock()) {
                    ctx.collect(next++);
                }
                Thread.sleep(sleepMs);
            }
        }

        @Override
        public void cancel() {
            running = false;
        }

        @Override
        public void snapshotState(FunctionSnapshotContext context) throws Exception {
            state.update(java.util.Collections.singletonList(next));
        }

        @Override
        public void initializeState(FunctionInitializationContext context) throws Exception {
            state = context.getOperatorStateStore()
                    .getListState(new ListStateDescriptor<>("next", Long.class));
            for (Long value : state.get()) {
                next = value;
            }
        }
    }

    static class FailAt implements MapFunction<Long, String> {
        private final long failAfter;

        FailAt(long failAfter) {
            this.failAfter = failAfter;
        }

        @Override
        public String map(Long value) {
            if (failAfter >= 0 && value >= failAfter) {
                throw new IllegalStateException("iggy test job failing at " + value);
            }
            return "{\"seq\":" + value + "}";
        }
    }
}
