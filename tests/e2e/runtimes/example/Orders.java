package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.ArrayList;
import java.util.List;

/** Java: a RequestHandler of plain Java objects (setters in, getters out). */
public class Orders implements RequestHandler<Orders.Order, Orders.Receipt> {
    public static class Item {
        private String sku;
        private int qty;

        public String getSku() { return sku; }
        public void setSku(String sku) { this.sku = sku; }
        public int getQty() { return qty; }
        public void setQty(int qty) { this.qty = qty; }
    }

    public static class Order {
        private String id;
        private List<Item> items = new ArrayList<>();
        public boolean rush;

        public String getId() { return id; }
        public void setId(String id) { this.id = id; }
        public List<Item> getItems() { return items; }
        public void setItems(List<Item> items) { this.items = items; }
    }

    public static class Receipt {
        private final String orderId;
        private final int units;
        private final boolean rush;
        private final List<String> skus;

        Receipt(String orderId, int units, boolean rush, List<String> skus) {
            this.orderId = orderId;
            this.units = units;
            this.rush = rush;
            this.skus = skus;
        }

        public String getOrderId() { return orderId; }
        public int getUnits() { return units; }
        public boolean isRush() { return rush; }
        public List<String> getSkus() { return skus; }
    }

    @Override
    public Receipt handleRequest(Order order, Context context) {
        int units = 0;
        List<String> skus = new ArrayList<>();
        for (Item item : order.getItems()) {
            units += item.getQty();
            skus.add(item.getSku());
        }
        return new Receipt(order.getId(), units, order.rush, skus);
    }
}
