import { describeEventBus } from './__fixtures__/event-bus-suite.js';
import { createInProcessEventBus } from './event-bus.js';

describeEventBus('in-process', async () => {
  const bus = createInProcessEventBus();
  return { first: bus, second: bus, close: () => bus.close() };
});
